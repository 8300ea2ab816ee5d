//! The request bodies of OpenAI's API as this server reads them. Fields it does not know are
//! ignored; fields it knows but cannot honour (`n` other than 1, `logprobs`, `echo`, `best_of`,
//! `tools`) are refused by the handlers.

use serde::Deserialize;
use serde_json::Value;

/// `stop`: one string or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and no choices) before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// The sampling and length fields both endpoints share (read from the same body as the
/// endpoint's own fields).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Sampling {
    pub max_tokens: Option<u64>,
    /// The chat endpoint's newer name for `max_tokens`.
    pub max_completion_tokens: Option<u64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Not OpenAI's; as llama.cpp's server takes it (0 = off).
    pub top_k: Option<u32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    /// Not OpenAI's: RWKV's decay of the penalties' counts per token.
    pub penalty_decay: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    /// Token id (as a string) → bias; only -100 (never sample the token) is supported.
    pub logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    pub n: Option<u32>,
    pub best_of: Option<u32>,
    pub echo: Option<bool>,
    /// An integer for completions, a boolean for chat: refused unless null, false or 0.
    pub logprobs: Option<Value>,
    pub top_logprobs: Option<u32>,
    pub tools: Option<Value>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
}

/// `prompt` of `/v1/completions`: a string, token ids, or a list of one of either.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
    Texts(Vec<String>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Clone, Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: Prompt,
    pub suffix: Option<String>,
}

/// One part of a message's content list; only `text` parts are read.
#[derive(Clone, Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Option<Content>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
}
