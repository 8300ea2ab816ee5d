//! [`ModelError`]: why a GGUF file is not a usable RWKV-7 model. Every variant names the file and the key or
//! tensor involved, with what was expected and what was found.

use std::path::PathBuf;

use gguf_file::GgufError;
use thiserror::Error;

/// Everything that can go wrong in this crate: a file that is not a usable model, bad input to the engine,
/// or a GPU or kernel failure.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The file is not a readable GGUF file at all.
    #[error(transparent)]
    Gguf(#[from] GgufError),

    /// A required metadata key is absent.
    #[error("{}: metadata key '{key}' is missing", path.display())]
    MissingKey {
        /// The model file.
        path: PathBuf,
        /// The GGUF key.
        key: String,
    },

    #[error("{}: metadata key '{key}' should be {expected} but is {found}", path.display())]
    /// A metadata key has the wrong GGUF type.
    KeyType {
        /// The model file.
        path: PathBuf,
        /// The GGUF key.
        key: String,
        /// The type expected ("an integer", "a string", ...).
        expected: &'static str,
        /// The value found.
        found: String,
    },

    #[error("{}: architecture '{found}' is not RWKV-7 (general.architecture must be \"rwkv7\"){hint}", path.display())]
    /// `general.architecture` is not `rwkv7`.
    WrongArchitecture {
        /// The model file.
        path: PathBuf,
        /// The architecture the file names.
        found: String,
        /// What that architecture is, for known relatives (`arwkv7`, RWKV-6); empty otherwise.
        hint: &'static str,
    },

    #[error("{}: metadata key '{key}' = {value}: {reason}", path.display())]
    /// A hyperparameter has a value the model cannot have (zero, out of range, not a whole number of heads).
    BadHParam {
        /// The model file.
        path: PathBuf,
        /// The GGUF key.
        key: String,
        /// The value found.
        value: String,
        /// Why it is refused.
        reason: String,
    },

    #[error("{}: metadata key '{key}' = {value} but tensor '{tensor}' has {dim} = {found}", path.display())]
    /// A hyperparameter disagrees with the shape of the tensor it describes (spec §1.1).
    HParamMismatch {
        /// The model file.
        path: PathBuf,
        /// The GGUF key.
        key: String,
        /// The key's value.
        value: u64,
        /// The tensor checked against it.
        tensor: String,
        /// The dimension compared (`ne[i]`, or the highest block index + 1).
        dim: String,
        /// That dimension's size.
        found: u64,
    },

    #[error(
        "{}: the vocabulary has {tokens} tokens (tokenizer.ggml.tokens) but token_embd.weight has {rows} rows",
        path.display()
    )]
    /// The tokenizer's vocabulary and the embedding table differ in size.
    VocabMismatch {
        /// The model file.
        path: PathBuf,
        /// Entries of `tokenizer.ggml.tokens`.
        tokens: u64,
        /// Rows of `token_embd.weight`.
        rows: u64,
    },

    #[error("{}: tensor '{tensor}' is missing", path.display())]
    /// A tensor of the RWKV-7 tensor table (spec §2) is absent.
    MissingTensor {
        /// The model file.
        path: PathBuf,
        /// The GGUF tensor name.
        tensor: String,
    },

    #[error("{}: tensor '{tensor}' has shape {found} (ne order) but {expected} was expected", path.display())]
    /// A tensor's shape is not the one the hyperparameters imply.
    WrongShape {
        /// The model file.
        path: PathBuf,
        /// The GGUF tensor name.
        tensor: String,
        /// The expected dimensions, ggml order (`[128, 65536]`).
        expected: String,
        /// The dimensions found, ggml order.
        found: String,
    },

    #[error(
        "{}: tensor '{tensor}' has type {ggml_type} (ggml id {id}), which this engine does not support: {why} \
         (it runs {supported})",
        path.display()
    )]
    /// A tensor's ggml type is one the engine does not run (for that tensor).
    UnsupportedType {
        /// The model file.
        path: PathBuf,
        /// The GGUF tensor name.
        tensor: String,
        /// The ggml type's name.
        ggml_type: &'static str,
        /// The ggml type id.
        id: u32,
        /// Why it cannot run.
        why: &'static str,
        /// The types the engine runs, listed.
        supported: String,
    },

    #[error("{}: tensor '{tensor}' is not part of an RWKV-7 model{hint}", path.display())]
    /// The file holds a tensor that is not part of the RWKV-7 tensor table.
    UnexpectedTensor {
        /// The model file.
        path: PathBuf,
        /// The GGUF tensor name.
        tensor: String,
        /// A note for a `blk.` tensor; empty otherwise.
        hint: String,
    },

    #[error("not supported: {what}")]
    /// A model shape, weight type or request this engine does not handle (named in `what`).
    Unsupported {
        /// What was asked for, and the engine's bounds.
        what: String,
    },

    /// The GPU layer failed (device, buffer, pipeline, readback).
    #[error(transparent)]
    Gpu(#[from] gpu_core::GpuError),

    /// A kernel launcher refused its arguments or bindings.
    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),

    /// A call that needs at least one token was given none.
    #[error("no tokens to process")]
    EmptyInput,

    #[error("the batch is full: it decodes at most {max} sequences at once")]
    /// A sequence was added to a batch whose rows are all taken.
    BatchFull {
        /// The batch's size B.
        max: usize,
    },

    #[error("token id {token} is outside the vocabulary of {vocab} tokens")]
    /// A token id is not below the vocabulary size V.
    TokenOutOfRange {
        /// The token id.
        token: u32,
        /// V.
        vocab: usize,
    },

    #[error("logits of position {position} were asked for, but only {tokens} tokens were given")]
    /// Logits were asked for at a position past the tokens given.
    PositionOutOfRange {
        /// The position asked for (0-based).
        position: usize,
        /// The number of tokens given.
        tokens: usize,
    },

    #[error("state {what} has {found} values but this model's state has {expected}")]
    /// A state snapshot's part does not have this model's size.
    StateMismatch {
        /// The part (`shift_att`, `shift_ffn`, `wkv`).
        what: &'static str,
        /// The model's size of that part, in f32 values.
        expected: u64,
        /// The snapshot's, in f32 values.
        found: u64,
    },

    #[error("state file {path}: {message}")]
    /// A state file could not be written or read, or is not a state of this model.
    StateFile {
        /// The state file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// `[128, 65536]`.
pub(crate) fn shape_string(ne: &[u64]) -> String {
    let parts: Vec<String> = ne.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}
