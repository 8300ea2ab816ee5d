//! Errors of the World tokenizer.

use thiserror::Error;

/// Why a tokenizer could not be built, or why ids could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenizerError {
    #[error("token {id}: {reason} in {token:?}")]
    BadEscape { id: usize, token: String, reason: &'static str },
    #[error("{types} token types for {tokens} tokens")]
    TypeCountMismatch { tokens: usize, types: usize },
    #[error("token {id}: unknown token type {value}")]
    UnknownTokenType { id: usize, value: i32 },
    #[error("token {id} is empty")]
    EmptyToken { id: usize },
    #[error("vocabulary of {0} tokens does not fit token ids of 32 bits")]
    TooManyTokens(usize),
    #[error("no normal token for the single byte 0x{0:02x}: greedy matching could not encode every input")]
    MissingByte(u8),
    #[error("tokenizer metadata: {0}")]
    Metadata(String),
    #[error("token id {id} is out of range (vocabulary size {vocab_size})")]
    InvalidId { id: u32, vocab_size: usize },
}
