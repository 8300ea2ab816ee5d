//! [`ServerError`]: why the server could not start or stopped; [`ApiError`]: an HTTP error in
//! OpenAI's form, `{"error": {"message", "type", "param", "code"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("the model's chat template (tokenizer.chat_template) does not compile: {0:#}")]
    Template(#[source] minijinja::Error),
    #[error("reading the model's tokenizer: {0}")]
    Tokenizer(#[from] rwkv_model::tokenizer::TokenizerError),
    #[error("metadata key '{key}' of the model: {why}")]
    Metadata { key: &'static str, why: String },
    #[error("invalid server options: {0}")]
    Options(String),
    #[error("starting the engine thread: {0}")]
    EngineThread(#[source] std::io::Error),
    #[error("the engine thread panicked")]
    EngineCrashed,
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// An error answer. `kind` is OpenAI's `type` (`invalid_request_error`, `authentication_error`,
/// `not_found_error`, `server_error`); `param` names the offending request field where there is
/// one; `code` is a short machine-readable reason.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
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

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", message).code("invalid_api_key")
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    /// 503: no capacity now (or shutting down); the client may retry.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// Any status, as another layer (axum's body limit, method routing) chose it.
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> ApiError {
        let kind = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
        ApiError::new(status, kind, message)
    }

    pub fn param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

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
