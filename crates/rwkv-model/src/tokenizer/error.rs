//! Errors of the World tokenizer.

use thiserror::Error;

/// Why a tokenizer could not be built, or why ids could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenizerError {
    /// A vocabulary entry's escapes are malformed (see [`super::unescape_token`]).
    #[error("token {id}: {reason} in {token:?}")]
    BadEscape {
        /// The token id.
        id: usize,
        /// The entry as written.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The token type list and the vocabulary differ in length.
    #[error("{types} token types for {tokens} tokens")]
    TypeCountMismatch {
        /// Vocabulary entries.
        tokens: usize,
        /// Token type entries.
        types: usize,
    },
    /// A token type value is not one of llama.cpp's ([`super::TokenType`]).
    #[error("token {id}: unknown token type {value}")]
    UnknownTokenType {
        /// The token id.
        id: usize,
        /// The type value found.
        value: i32,
    },
    /// A vocabulary entry has no bytes.
    #[error("token {id} is empty")]
    EmptyToken {
        /// The token id.
        id: usize,
    },
    /// The vocabulary has more entries than a `u32` id can name.
    #[error("vocabulary of {0} tokens does not fit token ids of 32 bits")]
    TooManyTokens(usize),
    /// No normal token is this single byte, so some inputs could not be encoded.
    #[error("no normal token for the single byte 0x{0:02x}: greedy matching could not encode every input")]
    MissingByte(u8),
    /// The GGUF's tokenizer keys are missing or mistyped.
    #[error("tokenizer metadata: {0}")]
    Metadata(String),
    /// A token id is not below the vocabulary size.
    #[error("token id {id} is out of range (vocabulary size {vocab_size})")]
    InvalidId {
        /// The token id.
        id: u32,
        /// The number of tokens in the vocabulary.
        vocab_size: usize,
    },
}
