//! Request bodies: raw bytes (axum's body limit answers 413), then UTF-8 (400), then JSON syntax
//! (400), then the request's shape (422, naming the field through `serde_path_to_error`). Every
//! failure is an [`ApiError`] in OpenAI's form, never axum's plain-text rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A request body that is a JSON value.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            let error = ApiError::with_status(rejection.status(), rejection.body_text());
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                error.code("request_too_large")
            } else {
                error
            }
        })?;
        json_value(&bytes).map(JsonBody)
    }
}

/// The JSON value of a body.
pub fn json_value(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::invalid(format!(
            "the request body is not valid UTF-8: invalid byte sequence at byte offset {}",
            e.valid_up_to()
        ))
        .code("invalid_utf8")
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::invalid("the request body is empty: send a JSON object").code("invalid_json"));
    }
    serde_json::from_str(text)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")).code("invalid_json"))
}

/// `value` read as a `T`; a field of the wrong type or a missing one is named.
pub fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let error = ApiError::unprocessable(if path == "." {
            format!("the request body: {}", e.inner())
        } else {
            format!("{path}: {}", e.inner())
        })
        .code("invalid_type");
        if path == "." {
            error
        } else {
            error.param(path)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        model: String,
        temperature: Option<f32>,
        messages: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        role: String,
    }

    #[test]
    fn each_kind_of_bad_body_gets_its_status_and_names_what_is_wrong() {
        let e = json_value(b"{\"a\": \"caf\xc3\xa9 \xff\"}").unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, Some("invalid_utf8")));
        assert!(e.message.contains("byte offset 13"), "{}", e.message);

        for bad in [&b"{\"model\": "[..], b"not json", b"  ", b"{\"a\": 1,}"] {
            let e = json_value(bad).unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, Some("invalid_json")), "{bad:?}");
        }

        let value = json_value(br#"{"model": "m", "temperature": "hot", "messages": []}"#).unwrap();
        let e = parse::<Shape>(&value).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("temperature")));
        assert!(e.message.contains("invalid type: string \"hot\""), "{}", e.message);

        let value = json_value(br#"{"model": "m", "messages": [{"role": 3}]}"#).unwrap();
        let e = parse::<Shape>(&value).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));

        let value = json_value(br#"{"messages": []}"#).unwrap();
        let e = parse::<Shape>(&value).unwrap_err();
        assert!(e.message.contains("missing field `model`"), "{}", e.message);

        let value = json_value(br#"[1, 2]"#).unwrap();
        assert_eq!(parse::<Shape>(&value).unwrap_err().status, StatusCode::UNPROCESSABLE_ENTITY);
        let body = parse::<Shape>(&value).unwrap_err().body();
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
}
