//! The routes: `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/completions`,
//! `POST /v1/chat/completions` (behind the API key where one is set) and `GET /health`; anything
//! else is a 404 (or 405) in OpenAI's error form.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::app::App;
use crate::endpoints::{chat_completions, completions};
use crate::error::ApiError;
use crate::request_log::{log_requests, LogSink};

pub(crate) fn router(app: Arc<App>, log: LogSink) -> Router {
    let body_limit = app.options.max_body_bytes;
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_api_key))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(app)
        .layer(middleware::from_fn_with_state(log, log_requests))
}

/// With an API key set: `Authorization: Bearer KEY` or 401.
async fn require_api_key(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(key) = &app.options.api_key else { return next.run(request).await };
    let given = request.headers().get(AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    match given.map(|v| v.strip_prefix("Bearer ").unwrap_or("").trim()) {
        Some(given) if given == key => next.run(request).await,
        Some(_) => ApiError::unauthorized("incorrect API key provided").into_response(),
        None => {
            ApiError::unauthorized("no API key provided: send the header 'Authorization: Bearer KEY'").into_response()
        }
    }
}

fn model_object(app: &App) -> serde_json::Value {
    json!({"id": app.options.model_name, "object": "model", "created": 0, "owned_by": "rwkv-server"})
}

async fn models(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(json!({"object": "list", "data": [model_object(&app)]}))
}

async fn model(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.check_model(&id) {
        Ok(()) => Json(model_object(&app)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The engine's figures: sequences running and queued, tokens, the prefix cache.
async fn health(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let stats = app.engine.stats();
    let status = if app.engine.is_shutting_down() { "shutting_down" } else { "ok" };
    Json(json!({"status": status, "model": app.options.model_name, "engine": stats}))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route {} {}", request.method(), request.uri().path())).code("unknown_url")
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::with_status(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
    .code("method_not_allowed")
}
