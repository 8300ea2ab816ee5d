//! Building the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.

use gguf_file::{GgufFile, MetadataValue};

use super::{Tokenizer, TokenizerError};

const TOKENS_KEY: &str = "tokenizer.ggml.tokens";
const TYPES_KEY: &str = "tokenizer.ggml.token_type";
const MODEL_KEY: &str = "tokenizer.ggml.model";

impl Tokenizer {
    /// The tokenizer of a GGUF file: `tokenizer.ggml.model` must be `rwkv`; `tokenizer.ggml.tokens` (array of
    /// strings) is required, `tokenizer.ggml.token_type` (array of integers) optional.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let model = file.metadata(MODEL_KEY).and_then(MetadataValue::as_str);
        if model != Some("rwkv") {
            return Err(TokenizerError::Metadata(format!(
                "{MODEL_KEY} is {}, expected \"rwkv\"",
                model.map_or("missing".to_owned(), |m| format!("{m:?}"))
            )));
        }
        let tokens =
            file.metadata(TOKENS_KEY).and_then(MetadataValue::as_array).and_then(|a| a.as_strings()).ok_or_else(
                || TokenizerError::Metadata(format!("{TOKENS_KEY} is missing or not an array of strings")),
            )?;
        let types = match file.metadata(TYPES_KEY) {
            None => None,
            Some(value) => {
                let bad = || TokenizerError::Metadata(format!("{TYPES_KEY} is not an array of 32-bit integers"));
                let array = value.as_array().ok_or_else(bad)?;
                let types: Option<Vec<i32>> =
                    (0..array.len()).map(|i| array.get(i)?.as_i64().and_then(|v| i32::try_from(v).ok())).collect();
                Some(types.ok_or_else(bad)?)
            }
        };
        Tokenizer::from_tokens(tokens, types.as_deref())
    }
}
