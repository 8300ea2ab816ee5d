//! `POST /v1/completions` and `POST /v1/chat/completions`: read and check the request, make the
//! prompt's tokens, submit the job, answer (see [`crate::respond`]).
//!
//! Unset sampling fields take ChatRWKV's defaults: `PIPELINE_ARGS` for completions (so a request
//! with only `temperature: 0` decodes as `rwkv-cli generate --temperature 0`), the chat demo's
//! for chat (token 0 banned; the answer ends at the template's turn end). `max_tokens` defaults
//! to 16 for completions (as OpenAI's) and to the server's limit for chat.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use rwkv_model::gpu::SamplerConfig;

use crate::app::App;
use crate::error::ApiError;
use crate::generation::{settings, start, Settings};
use crate::json_body::{parse, JsonBody};
use crate::openai::{ChatRequest, CompletionRequest, Content, Prompt, Sampling};
use crate::request_log::LogSlot;
use crate::respond::{refuse, respond, ChatShape, CompletionShape, Conversation, Meta, Shape};
use crate::template::ChatMessage;

/// OpenAI's default `max_tokens` for completions.
pub const DEFAULT_COMPLETION_TOKENS: usize = 16;

pub(crate) async fn completions(
    State(app): State<Arc<App>>,
    Extension(slot): Extension<LogSlot>,
    JsonBody(body): JsonBody,
) -> Response {
    let prepared = (|| {
        let request: CompletionRequest = parse(&body)?;
        let sampling: Sampling = parse(&body)?;
        app.check_model(&request.model)?;
        if request.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::invalid("suffix (insertion) is not supported").param("suffix"));
        }
        let settings = settings(&app, &sampling, &SamplerConfig::CHATRWKV, DEFAULT_COMPLETION_TOKENS)?;
        Ok((completion_prompt(&app, request.prompt)?, settings))
    })();
    match prepared {
        Ok((prompt, settings)) => run::<CompletionShape>(app, "cmpl", prompt, None, settings, slot).await,
        Err(error) => refuse(&slot, error),
    }
}

pub(crate) async fn chat_completions(
    State(app): State<Arc<App>>,
    Extension(slot): Extension<LogSlot>,
    JsonBody(body): JsonBody,
) -> Response {
    let prepared = (|| {
        let request: ChatRequest = parse(&body)?;
        let sampling: Sampling = parse(&body)?;
        app.check_model(&request.model)?;
        let mut settings = settings(&app, &sampling, &SamplerConfig::CHATRWKV_CHAT, app.options.max_output_tokens)?;
        settings.stops.push(app.text.turn_end.clone());
        Ok((chat_prompt(&app, request)?, settings))
    })();
    match prepared {
        Ok((conversation, settings)) => {
            let prompt = conversation.tokens.clone();
            run::<ChatShape>(app, "chatcmpl", prompt, Some(conversation), settings, slot).await
        }
        Err(error) => refuse(&slot, error),
    }
}

async fn run<S: Shape>(
    app: Arc<App>,
    prefix: &str,
    prompt: Vec<u32>,
    conversation: Option<Conversation>,
    settings: Settings,
    slot: LogSlot,
) -> Response {
    let prompt_tokens = prompt.len();
    slot.prompt_tokens(prompt_tokens);
    let submission = match app.submit(prompt, settings.sampler.clone(), settings.max_tokens) {
        Ok(submission) => submission,
        Err(error) => return refuse(&slot, error),
    };
    let started = match start(submission).await {
        Ok(started) => started,
        Err(error) => return refuse(&slot, error),
    };
    if let Some(c) = &conversation {
        app.memory.remember(c.text.clone(), c.tokens.clone());
    }
    let meta = Meta::new(&app, prefix);
    respond::<S>(app, meta, settings, started, conversation, prompt_tokens, slot).await
}

/// The prompt's tokens: one string or one token list (a list of several prompts is refused).
fn completion_prompt(app: &App, prompt: Prompt) -> Result<Vec<u32>, ApiError> {
    let tokens = match prompt {
        Prompt::Text(text) => app.text.tokenizer.encode(&text),
        Prompt::Tokens(ids) => ids,
        Prompt::Texts(texts) if texts.len() == 1 => app.text.tokenizer.encode(&texts[0]),
        Prompt::TokenLists(mut lists) if lists.len() == 1 => lists.swap_remove(0),
        Prompt::Texts(texts) => return Err(several_prompts(texts.len())),
        Prompt::TokenLists(lists) => return Err(several_prompts(lists.len())),
    };
    let vocab = app.text.vocab();
    if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(ApiError::invalid(format!("prompt token {token} is outside the vocabulary of {vocab} tokens"))
            .param("prompt"));
    }
    checked_length(app, tokens, "prompt")
}

fn several_prompts(n: usize) -> ApiError {
    ApiError::invalid(format!("{n} prompts were given; this server takes one prompt per request"))
        .param("prompt")
        .code("unsupported_value")
}

/// The conversation through the chat template, tokenized after the remembered conversation it
/// continues, if any.
fn chat_prompt(app: &App, request: ChatRequest) -> Result<Conversation, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid("messages is empty: give at least one message").param("messages"));
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, message) in request.messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(ApiError::invalid(format!(
                    "messages[{i}].role is '{other}'; this server takes system, developer, user and assistant messages"
                ))
                .param(format!("messages[{i}].role")))
            }
        };
        let content = match message.content {
            None => None,
            Some(Content::Text(text)) => Some(text),
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for (j, part) in parts.into_iter().enumerate() {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) => {
                            return Err(ApiError::invalid(format!(
                            "messages[{i}].content[{j}] is a '{kind}' part without text; only text parts are supported"
                        ))
                            .param(format!("messages[{i}].content[{j}]")))
                        }
                    }
                }
                Some(text)
            }
        };
        if role != "assistant" && content.as_deref().is_none_or(|c| c.trim().is_empty()) {
            return Err(ApiError::invalid(format!("messages[{i}] ({role}) has no content"))
                .param(format!("messages[{i}].content")));
        }
        messages.push(ChatMessage { role: role.into(), content });
    }
    let prompt = app
        .text
        .template
        .render(&messages)
        .map_err(|e| ApiError::invalid(e.0).param("messages").code("invalid_messages"))?;
    let tokens = checked_length(app, app.memory.encode(&app.text.tokenizer, &prompt), "messages")?;
    Ok(Conversation { text: prompt, tokens })
}

/// Refuses an empty prompt or one over the limit.
fn checked_length(app: &App, tokens: Vec<u32>, param: &str) -> Result<Vec<u32>, ApiError> {
    let limit = app.options.max_prompt_tokens;
    if tokens.is_empty() {
        return Err(ApiError::invalid("the prompt is empty: RWKV needs at least one token to start from").param(param));
    }
    if tokens.len() > limit {
        return Err(ApiError::invalid(format!(
            "the prompt has {} tokens, but this server takes at most {limit}",
            tokens.len()
        ))
        .param(param)
        .code("context_length_exceeded"));
    }
    Ok(tokens)
}
