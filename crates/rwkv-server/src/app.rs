//! What every handler shares: the engine, the text side of the model, the options.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rwkv_model::gpu::SamplerConfig;

use crate::engine::{EngineHandle, Refusal, Submission};
use crate::error::ApiError;
use crate::text_model::TextModel;
use crate::token_memory::TokenMemory;

/// Conversations whose tokens are remembered ([`TokenMemory`]).
const REMEMBERED_CONVERSATIONS: usize = 256;

/// Limits and names; [`ServerOptions::default`] gives the values `rwkv-cli serve` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// The model's name in the API (`/v1/models`; requests naming another are refused).
    pub model_name: String,
    /// Requests must carry `Authorization: Bearer KEY` where set (except `/health`).
    pub api_key: Option<String>,
    /// Requests that may wait for a slot beyond those of the batch; more are refused (503).
    pub max_queue: usize,
    /// The most prompt tokens of one request.
    pub max_prompt_tokens: usize,
    /// The most tokens one request may ask for (`max_tokens`), and the chat default.
    pub max_output_tokens: usize,
    /// The largest request body (413 beyond).
    pub max_body_bytes: usize,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            model_name: "rwkv".into(),
            api_key: None,
            max_queue: 256,
            max_prompt_tokens: 32_768,
            max_output_tokens: 8_192,
            max_body_bytes: 8 << 20,
        }
    }
}

pub(crate) struct App {
    pub engine: EngineHandle,
    pub text: TextModel,
    pub options: ServerOptions,
    /// The tokens of recent conversations, for chat requests that continue one.
    pub memory: TokenMemory,
    /// Numbers response ids and clock-derived seeds.
    counter: AtomicU64,
    started: u64,
}

impl App {
    pub fn new(engine: EngineHandle, text: TextModel, options: ServerOptions) -> App {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let memory = TokenMemory::new(REMEMBERED_CONVERSATIONS);
        App { engine, text, options, memory, counter: AtomicU64::new(0), started }
    }

    /// Refuses a request for another model (404, as OpenAI answers).
    pub fn check_model(&self, model: &str) -> Result<(), ApiError> {
        if model == self.options.model_name {
            return Ok(());
        }
        Err(ApiError::not_found(format!(
            "the model '{model}' does not exist: this server serves '{}'",
            self.options.model_name
        ))
        .param("model")
        .code("model_not_found"))
    }

    /// A response id, unique for this server's life.
    pub fn new_id(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{:x}{n:06x}", self.started & 0xffff_ffff)
    }

    /// A seed for a request that gave none: different for every request.
    pub fn fresh_seed(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        now ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// Hands a job to the engine.
    pub fn submit(&self, prompt: Vec<u32>, sampler: SamplerConfig, max_tokens: usize) -> Result<Submission, ApiError> {
        self.engine.submit(prompt, sampler, max_tokens, self.text.end_of_text).map_err(|refusal| match refusal {
            Refusal::Busy { max_batch, max_queue } => ApiError::unavailable(format!(
                "the server is busy: all {max_batch} batch slots and {max_queue} queue places are taken; retry later"
            ))
            .code("server_busy"),
            Refusal::ShuttingDown => ApiError::unavailable("the server is shutting down").code("shutting_down"),
        })
    }
}

/// Seconds since 1970, for `created`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
