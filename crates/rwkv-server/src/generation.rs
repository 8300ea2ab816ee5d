//! What both endpoints share: the request's sampling fields checked and mapped onto a
//! [`SamplerConfig`] (unset fields keep the endpoint's ChatRWKV defaults), and [`Generation`],
//! which turns a job's tokens into text pieces: never a split UTF-8 character, nothing of a stop
//! string or after it, then the finish reason.

use kernels::KernelError;
use rwkv_model::gpu::SamplerConfig;
use rwkv_model::tokenizer::{StreamDecoder, Tokenizer};
use rwkv_model::ModelError;

use crate::app::App;
use crate::engine::{Event, Failure, FailureKind, Finish, Submission};
use crate::error::ApiError;
use crate::openai::Sampling;
use crate::stop::StopMatcher;

/// The most stop strings of one request, and the longest one (bytes).
pub const MAX_STOPS: usize = 16;
pub const MAX_STOP_BYTES: usize = 1024;

/// The `logit_bias` value that bans a token.
const BAN: f32 = -100.0;

/// A request's generation settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub sampler: SamplerConfig,
    pub max_tokens: usize,
    pub stops: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Checks `s` and maps it onto `defaults`; `default_max_tokens` where the request sets none.
pub(crate) fn settings(
    app: &App,
    s: &Sampling,
    defaults: &SamplerConfig,
    default_max_tokens: usize,
) -> Result<Settings, ApiError> {
    let unsupported =
        |param: &str, why: &str| Err(ApiError::invalid(why.to_string()).param(param).code("unsupported_value"));
    if s.n.is_some_and(|n| n != 1) {
        return unsupported("n", "n must be 1: this server answers with one choice per request");
    }
    if s.best_of.is_some_and(|n| n != 1) {
        return unsupported("best_of", "best_of must be 1: this server answers with one choice per request");
    }
    if s.echo == Some(true) {
        return unsupported("echo", "echo is not supported");
    }
    let asks_logprobs = match &s.logprobs {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => false,
        Some(_) => true,
    };
    if asks_logprobs || s.top_logprobs.is_some_and(|n| n > 0) {
        return unsupported("logprobs", "logprobs are not supported");
    }
    if s.tools.as_ref().is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty())) {
        return unsupported("tools", "tools (function calling) are not supported");
    }
    let (param, asked) = match (s.max_completion_tokens, s.max_tokens) {
        (Some(n), _) => ("max_completion_tokens", Some(n)),
        (None, n) => ("max_tokens", n),
    };
    let limit = app.options.max_output_tokens;
    let max_tokens = match asked {
        None => default_max_tokens.min(limit),
        Some(0) => return Err(ApiError::invalid(format!("{param} must be at least 1")).param(param)),
        Some(n) if n > limit as u64 => {
            return Err(ApiError::invalid(format!("{param} is {n}, but this server allows at most {limit}"))
                .param(param)
                .code("max_tokens_too_large"))
        }
        Some(n) => n as usize,
    };
    let stops = s.stop.clone().map(|stop| stop.into_vec()).unwrap_or_default();
    if stops.len() > MAX_STOPS {
        return Err(
            ApiError::invalid(format!("{} stop strings; at most {MAX_STOPS} are allowed", stops.len())).param("stop")
        );
    }
    if let Some(long) = stops.iter().find(|stop| stop.len() > MAX_STOP_BYTES) {
        return Err(ApiError::invalid(format!(
            "a stop string of {} bytes; at most {MAX_STOP_BYTES} are allowed",
            long.len()
        ))
        .param("stop"));
    }
    let mut banned = defaults.banned.to_vec();
    for (token, &bias) in s.logit_bias.iter().flatten() {
        let param = format!("logit_bias.{token}");
        let id: u32 = token
            .parse()
            .map_err(|_| ApiError::invalid(format!("logit_bias key '{token}' is not a token id")).param(&param))?;
        if bias != BAN {
            return Err(ApiError::invalid(format!(
                "logit_bias of token {id} is {bias}; only {BAN} (never sample the token) is supported"
            ))
            .param(param)
            .code("unsupported_value"));
        }
        if !banned.contains(&id) {
            banned.push(id);
        }
    }
    let sampler = SamplerConfig {
        temperature: s.temperature.unwrap_or(defaults.temperature),
        top_p: s.top_p.unwrap_or(defaults.top_p),
        top_k: s.top_k.unwrap_or(defaults.top_k),
        presence_penalty: s.presence_penalty.unwrap_or(defaults.presence_penalty),
        frequency_penalty: s.frequency_penalty.unwrap_or(defaults.frequency_penalty),
        penalty_decay: s.penalty_decay.unwrap_or(defaults.penalty_decay),
        seed: s.seed.map_or_else(|| app.fresh_seed(), |seed| seed as u64),
        banned: banned.into(),
    };
    sampler.validate(app.text.vocab()).map_err(|e| match e {
        ModelError::Kernel(KernelError::SampleSetting { setting, value, expected }) => {
            ApiError::invalid(format!("{setting} is {value}, expected {expected}")).param(setting)
        }
        e @ ModelError::Kernel(
            KernelError::TooManyBanned { .. }
            | KernelError::BannedOutOfVocabulary { .. }
            | KernelError::EveryTokenBanned { .. },
        ) => ApiError::invalid(format!("logit_bias: {e}")).param("logit_bias"),
        e => ApiError::invalid(format!("invalid sampling settings: {e}")),
    })?;
    let include_usage = s.stream_options.is_some_and(|o| o.include_usage);
    Ok(Settings { sampler, max_tokens, stops, stream: s.stream, include_usage })
}

/// Why generation ended, as OpenAI names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop string, the chat turn's end, or the end-of-text token.
    Stop,
    /// `max_tokens` tokens.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// What [`Generation::next`] gives.
#[derive(Debug, PartialEq)]
pub enum Piece {
    /// Text (never empty).
    Text(String),
    Done(FinishReason),
    Failed(ApiError),
}

/// A job whose first event has come: a token or its end (a job that failed before producing
/// anything is an [`ApiError`] instead, answered with its own HTTP status).
pub struct Started {
    submission: Submission,
    first: Event,
}

/// Waits for the job's first event.
pub async fn start(mut submission: Submission) -> Result<Started, ApiError> {
    match submission.events.recv().await {
        Some(Event::Failed(failure)) => Err(failure_error(failure)),
        Some(first) => Ok(Started { submission, first }),
        None => Err(engine_stopped()),
    }
}

fn failure_error(failure: Failure) -> ApiError {
    match failure.kind {
        FailureKind::Rejected => ApiError::invalid(failure.message),
        FailureKind::Engine => ApiError::internal(failure.message).code("engine_error"),
        FailureKind::ShuttingDown => ApiError::unavailable(failure.message).code("shutting_down"),
    }
}

fn engine_stopped() -> ApiError {
    ApiError::internal("the engine stopped").code("engine_error")
}

/// A running job's text.
pub struct Generation<'t> {
    tokenizer: &'t Tokenizer,
    submission: Submission,
    /// The event [`start`] took, given first.
    first: Option<Event>,
    decoder: StreamDecoder<'t>,
    stops: StopMatcher,
    /// The tokens received (the one that completed a stop string included).
    tokens: Vec<u32>,
    completion_tokens: usize,
    /// Decided, given by the next call.
    finish: Option<FinishReason>,
}

impl<'t> Generation<'t> {
    pub fn new(tokenizer: &'t Tokenizer, started: Started, stops: &[String]) -> Generation<'t> {
        Generation {
            tokenizer,
            submission: started.submission,
            first: Some(started.first),
            decoder: tokenizer.stream_decoder(),
            stops: StopMatcher::new(stops),
            tokens: Vec::new(),
            completion_tokens: 0,
            finish: None,
        }
    }

    /// Tokens generated so far (the one that completed a stop string and the end-of-text
    /// token included).
    pub fn completion_tokens(&self) -> usize {
        self.completion_tokens
    }

    /// The tokens received so far (the end-of-text token, never sent, excluded).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The next piece; after `Done` or `Failed`, `Done` again.
    pub async fn next(&mut self) -> Piece {
        if let Some(finish) = self.finish {
            return Piece::Done(finish);
        }
        loop {
            let event = match self.first.take() {
                Some(event) => Some(event),
                None => self.submission.events.recv().await,
            };
            let (text, finish) = match event {
                Some(Event::Token(token)) => {
                    self.completion_tokens += 1;
                    self.tokens.push(token);
                    let decoded = match self.decoder.push(token) {
                        Ok(text) => text,
                        Err(e) => return self.fail(ApiError::internal(format!("decoding a token: {e}"))),
                    };
                    let text = self.stops.push(&decoded);
                    (text, self.stops.stopped().then_some(FinishReason::Stop))
                }
                Some(Event::Finished(finish)) => {
                    self.completion_tokens += usize::from(finish == Finish::EndOfText);
                    let decoder = std::mem::replace(&mut self.decoder, self.tokenizer.stream_decoder());
                    let mut text = self.stops.push(&decoder.finish());
                    let reason = if self.stops.stopped() {
                        FinishReason::Stop
                    } else {
                        text.push_str(&self.stops.finish());
                        match finish {
                            Finish::Length => FinishReason::Length,
                            Finish::EndOfText => FinishReason::Stop,
                        }
                    };
                    (text, Some(reason))
                }
                Some(Event::Failed(failure)) => return self.fail(failure_error(failure)),
                None => return self.fail(engine_stopped()),
            };
            if let Some(reason) = finish {
                self.finish = Some(reason);
                if text.is_empty() {
                    return Piece::Done(reason);
                }
                return Piece::Text(text);
            }
            if !text.is_empty() {
                return Piece::Text(text);
            }
        }
    }

    fn fail(&mut self, error: ApiError) -> Piece {
        self.finish = Some(FinishReason::Stop);
        Piece::Failed(error)
    }
}

/// Every piece of a generation: the text and how it finished.
pub async fn collect(generation: &mut Generation<'_>) -> Result<(String, FinishReason), ApiError> {
    let mut text = String::new();
    loop {
        match generation.next().await {
            Piece::Text(piece) => text.push_str(&piece),
            Piece::Done(finish) => return Ok((text, finish)),
            Piece::Failed(error) => return Err(error),
        }
    }
}
