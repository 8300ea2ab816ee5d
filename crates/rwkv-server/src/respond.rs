//! Answering a started job, the same way for both endpoints (each gives its JSON [`Shape`]):
//! one JSON response with `usage` and `finish_reason`, or server-sent events (`data: {chunk}`
//! per piece of text, a last chunk with `finish_reason`, the `usage` chunk where
//! `stream_options.include_usage` asks for it, then `data: [DONE]`). An error after the stream
//! has begun is sent as a `data: {"error": ...}` event before `[DONE]`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::app::{unix_now, App};
use crate::error::ApiError;
use crate::generation::{collect, FinishReason, Generation, Piece, Settings, Started};
use crate::request_log::LogSlot;

/// A response's identity.
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Meta {
    pub(crate) fn new(app: &App, prefix: &str) -> Meta {
        Meta { id: app.new_id(prefix), created: unix_now(), model: app.options.model_name.clone() }
    }
}

/// The JSON of one endpoint's answers.
pub trait Shape: Send + 'static {
    /// `object` of a streamed chunk.
    const CHUNK_OBJECT: &'static str;
    /// The one choice of a chunk: its text, or its end.
    fn chunk_choice(text: &str, finish: Option<FinishReason>) -> Value;
    /// A chunk sent before any text (chat: the assistant's role).
    fn opening_choice() -> Option<Value>;
    /// The whole answer.
    fn response(meta: &Meta, text: String, finish: FinishReason, usage: Value) -> Value;
}

pub fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// A chat prompt's text and tokens: a finished answer is remembered after them
/// ([`crate::token_memory`]).
pub struct Conversation {
    pub text: String,
    pub tokens: Vec<u32>,
}

fn remember(app: &App, conversation: &Option<Conversation>, generation: &Generation<'_>) {
    if let Some(c) = conversation {
        app.memory.remember_generation(&app.text.tokenizer, &c.text, &c.tokens, generation.tokens());
    }
}

/// Answers `started`, as a stream or as one response, recording tokens and finish in `slot`.
pub(crate) async fn respond<S: Shape>(
    app: Arc<App>,
    meta: Meta,
    settings: Settings,
    started: Started,
    conversation: Option<Conversation>,
    prompt_tokens: usize,
    slot: LogSlot,
) -> Response {
    if !settings.stream {
        let mut generation = Generation::new(&app.text.tokenizer, started, &settings.stops);
        let result = collect(&mut generation).await;
        slot.completion_tokens(generation.completion_tokens());
        return match result {
            Ok((text, finish)) => {
                remember(&app, &conversation, &generation);
                slot.finish(finish.as_str());
                let usage = usage(prompt_tokens, generation.completion_tokens());
                Json(S::response(&meta, text, finish, usage)).into_response()
            }
            Err(error) => {
                slot.finish(error.code.unwrap_or("error"));
                error.into_response()
            }
        };
    }
    let chunk = move |meta: &Meta, choices: Value, usage: Option<Value>| -> Value {
        let mut chunk = json!({
            "id": meta.id,
            "object": S::CHUNK_OBJECT,
            "created": meta.created,
            "model": meta.model,
            "choices": choices,
        });
        if settings.include_usage {
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        chunk
    };
    let events = async_stream::stream! {
        let mut generation = Generation::new(&app.text.tokenizer, started, &settings.stops);
        if let Some(choice) = S::opening_choice() {
            yield data(&chunk(&meta, json!([choice]), None));
        }
        loop {
            match generation.next().await {
                Piece::Text(text) => {
                    slot.completion_tokens(generation.completion_tokens());
                    yield data(&chunk(&meta, json!([S::chunk_choice(&text, None)]), None));
                }
                Piece::Done(finish) => {
                    remember(&app, &conversation, &generation);
                    slot.completion_tokens(generation.completion_tokens());
                    slot.finish(finish.as_str());
                    yield data(&chunk(&meta, json!([S::chunk_choice("", Some(finish))]), None));
                    if settings.include_usage {
                        let usage = usage(prompt_tokens, generation.completion_tokens());
                        yield data(&chunk(&meta, json!([]), Some(usage)));
                    }
                    break;
                }
                Piece::Failed(error) => {
                    slot.completion_tokens(generation.completion_tokens());
                    slot.finish(error.code.unwrap_or("error"));
                    yield data(&error.body());
                    break;
                }
            }
        }
        yield Ok(SseEvent::default().data("[DONE]"));
    };
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

fn data(value: &Value) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default().data(value.to_string()))
}

/// Answers a request that failed before it started, recording why.
pub(crate) fn refuse(slot: &LogSlot, error: ApiError) -> Response {
    slot.finish(error.code.unwrap_or("error"));
    error.into_response()
}

/// `/v1/completions`' JSON.
pub struct CompletionShape;

impl Shape for CompletionShape {
    const CHUNK_OBJECT: &'static str = "text_completion";

    fn chunk_choice(text: &str, finish: Option<FinishReason>) -> Value {
        json!({"text": text, "index": 0, "logprobs": null, "finish_reason": finish.map(FinishReason::as_str)})
    }

    fn opening_choice() -> Option<Value> {
        None
    }

    fn response(meta: &Meta, text: String, finish: FinishReason, usage: Value) -> Value {
        json!({
            "id": meta.id,
            "object": "text_completion",
            "created": meta.created,
            "model": meta.model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish.as_str()}],
            "usage": usage,
        })
    }
}

/// `/v1/chat/completions`' JSON.
pub struct ChatShape;

impl Shape for ChatShape {
    const CHUNK_OBJECT: &'static str = "chat.completion.chunk";

    fn chunk_choice(text: &str, finish: Option<FinishReason>) -> Value {
        let delta = if finish.is_some() { json!({}) } else { json!({"content": text}) };
        json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish.map(FinishReason::as_str)})
    }

    fn opening_choice() -> Option<Value> {
        Some(
            json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}),
        )
    }

    fn response(meta: &Meta, text: String, finish: FinishReason, usage: Value) -> Value {
        json!({
            "id": meta.id,
            "object": "chat.completion",
            "created": meta.created,
            "model": meta.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": finish.as_str(),
            }],
            "usage": usage,
        })
    }
}
