//! [`ServerError`]: why the server could not start or stopped; [`ApiError`]: an HTTP error in
//! OpenAI's form, `{"error": {"message", "type", "param", "code"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use thiserror::Error;

/// Why the server could not start, or stopped with an error.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The model file's chat template is not a template minijinja can compile.
    #[error("the model's chat template (tokenizer.chat_template) does not compile: {0:#}")]
    Template(#[source] minijinja::Error),
    /// The model's tokenizer could not be used.
    #[error("reading the model's tokenizer: {0}")]
    Tokenizer(#[from] rwkv_model::tokenizer::TokenizerError),
    /// A metadata key of the model file holds something unusable.
    #[error("metadata key '{key}' of the model: {why}")]
    Metadata {
        /// The key.
        key: &'static str,
        /// What is wrong with its value.
        why: String,
    },
    /// [`crate::ServerOptions`] that cannot work.
    #[error("invalid server options: {0}")]
    Options(String),
    /// The engine thread could not be started.
    #[error("starting the engine thread: {0}")]
    EngineThread(#[source] std::io::Error),
    /// The engine thread panicked.
    #[error("the engine thread panicked")]
    EngineCrashed,
    /// Serving on the listener failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// An error answer. `kind` is OpenAI's `type` (`invalid_request_error`, `authentication_error`,
/// `not_found_error`, `server_error`); `param` names the offending request field where there is
/// one; `code` is a short machine-readable reason.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What is wrong, for people.
    pub message: String,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<String>,
    /// A short machine-readable reason.
    pub code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), kind, param: None, code: None }
    }

    /// 400: the request is well-formed JSON of the right shape but asks for something invalid.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 422: the JSON does not have the request's shape (a wrong type, a missing field).
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_error", message)
    }

    /// 401: no API key, or a wrong one.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", message).code("invalid_api_key")
    }

    /// 404: no such route or model.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    /// 503: no capacity now (or shutting down); the client may retry.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
    }

    /// 500: the server's fault.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// Any status, as another layer (axum's body limit, method routing) chose it.
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> ApiError {
        let kind = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
        ApiError::new(status, kind, message)
    }

    /// With the request field at fault.
    pub fn param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    /// With a machine-readable reason.
    pub fn code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
