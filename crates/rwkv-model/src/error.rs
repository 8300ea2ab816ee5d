//! [`ModelError`]: why a GGUF file is not a usable RWKV-7 model. Every variant names the file and the key or
//! tensor involved, with what was expected and what was found.

use std::path::PathBuf;

use gguf_file::GgufError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    /// The file is not a readable GGUF file at all.
    #[error(transparent)]
    Gguf(#[from] GgufError),

    #[error("{}: metadata key '{key}' is missing", path.display())]
    MissingKey { path: PathBuf, key: String },

    #[error("{}: metadata key '{key}' should be {expected} but is {found}", path.display())]
    KeyType { path: PathBuf, key: String, expected: &'static str, found: String },

    #[error("{}: architecture '{found}' is not RWKV-7 (general.architecture must be \"rwkv7\"){hint}", path.display())]
    WrongArchitecture { path: PathBuf, found: String, hint: &'static str },

    #[error("{}: metadata key '{key}' = {value}: {reason}", path.display())]
    BadHParam { path: PathBuf, key: String, value: String, reason: String },

    #[error("{}: metadata key '{key}' = {value} but tensor '{tensor}' has {dim} = {found}", path.display())]
    HParamMismatch { path: PathBuf, key: String, value: u64, tensor: String, dim: String, found: u64 },

    #[error(
        "{}: the vocabulary has {tokens} tokens (tokenizer.ggml.tokens) but token_embd.weight has {rows} rows",
        path.display()
    )]
    VocabMismatch { path: PathBuf, tokens: u64, rows: u64 },

    #[error("{}: tensor '{tensor}' is missing", path.display())]
    MissingTensor { path: PathBuf, tensor: String },

    #[error("{}: tensor '{tensor}' has shape {found} (ne order) but {expected} was expected", path.display())]
    WrongShape { path: PathBuf, tensor: String, expected: String, found: String },

    #[error(
        "{}: tensor '{tensor}' has type {ggml_type} (ggml id {id}), which this engine does not support: {why} \
         (it runs {supported})",
        path.display()
    )]
    UnsupportedType {
        path: PathBuf,
        tensor: String,
        ggml_type: &'static str,
        id: u32,
        why: &'static str,
        supported: String,
    },

    #[error("{}: tensor '{tensor}' is not part of an RWKV-7 model{hint}", path.display())]
    UnexpectedTensor { path: PathBuf, tensor: String, hint: String },

    #[error("not supported: {what}")]
    Unsupported { what: String },

    #[error(transparent)]
    Gpu(#[from] gpu_core::GpuError),

    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),

    #[error("no tokens to process")]
    EmptyInput,

    #[error("the batch is full: it decodes at most {max} sequences at once")]
    BatchFull { max: usize },

    #[error("token id {token} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange { token: u32, vocab: usize },

    #[error("logits of position {position} were asked for, but only {tokens} tokens were given")]
    PositionOutOfRange { position: usize, tokens: usize },

    #[error("state {what} has {found} values but this model's state has {expected}")]
    StateMismatch { what: &'static str, expected: u64, found: u64 },

    #[error("state file {path}: {message}")]
    StateFile { path: String, message: String },
}

/// `[128, 65536]`.
pub(crate) fn shape_string(ne: &[u64]) -> String {
    let parts: Vec<String> = ne.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}
