//! The RWKV "World" tokenizer: UTF-8 bytes, then greedy longest match over the vocabulary (spec §7).
//!
//! Built from a GGUF's `tokenizer.ggml.tokens` (escaped byte strings, see [`unescape_token`]) and
//! `tokenizer.ggml.token_type`, or from the built-in World vocabulary ([`Tokenizer::world`]).

mod error;
mod gguf;
mod matcher;
mod stream;
mod unescape;
mod world;

#[cfg(test)]
mod tests;

pub use error::TokenizerError;
pub use stream::StreamDecoder;
pub use unescape::{escape_token, unescape_token};
pub use world::{world_token_types, world_tokens, WORLD_CHAT_TEMPLATE, WORLD_EOT_TOKEN_ID, WORLD_VOCAB_SIZE};

use matcher::Matcher;

/// llama.cpp's token types (`tokenizer.ggml.token_type` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum TokenType {
    /// 0: no type given.
    Undefined = 0,
    /// 1: an ordinary text token, the only kind encoding produces.
    Normal = 1,
    /// 2: the unknown-token placeholder.
    Unknown = 2,
    /// 3: a control token; decodes to nothing.
    Control = 3,
    /// 4: a user-defined token.
    UserDefined = 4,
    /// 5: an unused slot; decodes to nothing.
    Unused = 5,
    /// 6: a raw byte token.
    Byte = 6,
}

impl TokenType {
    /// The type of a `tokenizer.ggml.token_type` value, or `None` for a value llama.cpp does not define.
    pub fn from_i32(value: i32) -> Option<Self> {
        Some(match value {
            0 => TokenType::Undefined,
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }

    /// Whether the token stands for text: control and unused tokens decode to nothing.
    pub fn is_text(self) -> bool {
        !matches!(self, TokenType::Control | TokenType::Unused)
    }
}

/// A World-style tokenizer: encoding matches NORMAL tokens only, decoding concatenates token bytes.
#[derive(Clone)]
pub struct Tokenizer {
    /// All token bytes, concatenated; token `i` is `bytes[offsets[i]..offsets[i + 1]]`.
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    types: Vec<TokenType>,
    matcher: Matcher,
}

impl Tokenizer {
    /// Builds the tokenizer from GGUF token strings (escaped as in [`unescape_token`]) and their types.
    /// Without `types` every token counts as NORMAL. Fails if a string is malformed or empty, if the type
    /// list has another length or unknown values, or if some single byte has no NORMAL token (greedy
    /// matching could then get stuck; every RWKV vocabulary has all 256).
    pub fn from_tokens(tokens: &[String], types: Option<&[i32]>) -> Result<Tokenizer, TokenizerError> {
        if tokens.len() > u32::MAX as usize {
            return Err(TokenizerError::TooManyTokens(tokens.len()));
        }
        if let Some(types) = types {
            if types.len() != tokens.len() {
                return Err(TokenizerError::TypeCountMismatch { tokens: tokens.len(), types: types.len() });
            }
        }
        let mut bytes = Vec::with_capacity(tokens.iter().map(String::len).sum());
        let mut offsets = Vec::with_capacity(tokens.len() + 1);
        let mut token_types = Vec::with_capacity(tokens.len());
        offsets.push(0u32);
        for (id, token) in tokens.iter().enumerate() {
            let unescaped = unescape_token(token).map_err(|reason| TokenizerError::BadEscape {
                id,
                token: token.clone(),
                reason,
            })?;
            if unescaped.is_empty() {
                return Err(TokenizerError::EmptyToken { id });
            }
            bytes.extend_from_slice(&unescaped);
            let end = u32::try_from(bytes.len()).map_err(|_| TokenizerError::TooManyTokens(tokens.len()))?;
            offsets.push(end);
            let ty = match types {
                None => TokenType::Normal,
                Some(types) => {
                    TokenType::from_i32(types[id]).ok_or(TokenizerError::UnknownTokenType { id, value: types[id] })?
                }
            };
            token_types.push(ty);
        }
        let matcher = Matcher::new((0..tokens.len()).filter(|&i| token_types[i] == TokenType::Normal).map(|i| {
            let range = offsets[i] as usize..offsets[i + 1] as usize;
            (i as u32, &bytes[range])
        }));
        if let Some(b) = (0..=255u8).find(|&b| !matcher.has_single_byte(b)) {
            return Err(TokenizerError::MissingByte(b));
        }
        Ok(Tokenizer { bytes, offsets, types: token_types, matcher })
    }

    /// Number of token ids (65536 for World).
    pub fn vocab_size(&self) -> usize {
        self.types.len()
    }

    /// Encodes UTF-8 text.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_bytes(text.as_bytes())
    }

    /// Encodes any bytes: at each position the longest NORMAL token that is a prefix of the rest.
    pub fn encode_bytes(&self, input: &[u8]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(input.len() / 3 + 1);
        let mut pos = 0;
        while pos < input.len() {
            // Never `None`: construction checked that every single byte is a NORMAL token.
            let (id, len) = self.matcher.longest_prefix(&input[pos..]).unwrap_or((0, 1));
            ids.push(id);
            pos += len;
        }
        ids
    }

    /// The bytes of the tokens, concatenated; control and unused tokens (such as id 0, the end-of-text
    /// separator) contribute nothing. An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            self.append_decoded(id, &mut out)?;
        }
        Ok(out)
    }

    /// The raw bytes of one token, whatever its type.
    pub fn token_bytes(&self, id: u32) -> Result<&[u8], TokenizerError> {
        let i = self.check_id(id)?;
        Ok(&self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize])
    }

    /// The type of token `id`; fails for an id outside the vocabulary.
    pub fn token_type(&self, id: u32) -> Result<TokenType, TokenizerError> {
        Ok(self.types[self.check_id(id)?])
    }

    /// A decoder for streaming output that only ever returns whole characters.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self)
    }

    fn append_decoded(&self, id: u32, out: &mut Vec<u8>) -> Result<(), TokenizerError> {
        let bytes = self.token_bytes(id)?;
        if self.types[id as usize].is_text() {
            out.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn check_id(&self, id: u32) -> Result<usize, TokenizerError> {
        let i = id as usize;
        if i < self.types.len() {
            Ok(i)
        } else {
            Err(TokenizerError::InvalidId { id, vocab_size: self.types.len() })
        }
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("vocab_size", &self.vocab_size()).finish_non_exhaustive()
    }
}

impl PartialEq for Tokenizer {
    /// Same token bytes and types (the matcher follows from them).
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes && self.offsets == other.offsets && self.types == other.types
    }
}
