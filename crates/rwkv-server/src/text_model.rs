//! What the handlers need of the model besides the engine: its tokenizer, its chat template, the
//! text that ends a chat turn and the token that ends all text.

use rwkv_model::tokenizer::Tokenizer;
use rwkv_model::ModelFile;

use crate::error::ServerError;
use crate::template::ChatTemplate;

const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";
const EOT_KEY: &str = "tokenizer.ggml.eot_token_id";
const EOS_KEY: &str = "tokenizer.ggml.eos_token_id";

/// The World models' end of a turn (token 261); the answer stops there.
pub const WORLD_TURN_END: &str = "\n\n";
/// The World vocabulary's end-of-text separator.
pub const WORLD_END_OF_TEXT: u32 = 0;

/// The text side of a model: see the module documentation.
pub struct TextModel {
    /// Prompts to tokens, tokens to text.
    pub tokenizer: Tokenizer,
    /// Chat messages to a prompt.
    pub template: ChatTemplate,
    /// Where an assistant's answer ends (a stop string of every chat request).
    pub turn_end: String,
    /// The token that ends a completion (`finish_reason: "stop"`), not part of the text.
    pub end_of_text: Option<u32>,
}

impl TextModel {
    /// The World form with the World vocabulary's ends.
    pub fn world(tokenizer: Tokenizer) -> TextModel {
        TextModel {
            tokenizer,
            template: ChatTemplate::World,
            turn_end: WORLD_TURN_END.into(),
            end_of_text: Some(WORLD_END_OF_TEXT),
        }
    }

    /// From a model file: `tokenizer.chat_template` where it has one (else the World form),
    /// the turn end from `tokenizer.ggml.eot_token_id` (else a blank line), the end of text
    /// from `tokenizer.ggml.eos_token_id` (else token 0).
    pub fn from_model_file(file: &ModelFile, tokenizer: Tokenizer) -> Result<TextModel, ServerError> {
        let template = match file.metadata(CHAT_TEMPLATE_KEY) {
            None => ChatTemplate::World,
            Some(value) => {
                let source = value
                    .as_str()
                    .ok_or(ServerError::Metadata { key: CHAT_TEMPLATE_KEY, why: "is not a string".into() })?;
                ChatTemplate::jinja(source.to_string())?
            }
        };
        let token = |key: &'static str| -> Result<Option<u32>, ServerError> {
            let Some(value) = file.metadata(key) else { return Ok(None) };
            let id =
                value.as_u64().and_then(|v| u32::try_from(v).ok()).filter(|&id| (id as usize) < tokenizer.vocab_size());
            id.map(Some).ok_or_else(|| ServerError::Metadata {
                key,
                why: format!("is not a token id of the vocabulary of {} tokens", tokenizer.vocab_size()),
            })
        };
        let turn_end = match token(EOT_KEY)? {
            None => WORLD_TURN_END.to_string(),
            Some(id) => {
                let bytes = tokenizer.token_bytes(id)?;
                String::from_utf8(bytes.to_vec())
                    .ok()
                    .filter(|text| !text.is_empty())
                    .ok_or(ServerError::Metadata { key: EOT_KEY, why: format!("token {id} is not UTF-8 text") })?
            }
        };
        let end_of_text = Some(token(EOS_KEY)?.unwrap_or(WORLD_END_OF_TEXT));
        Ok(TextModel { tokenizer, template, turn_end, end_of_text })
    }

    /// Tokens in the vocabulary.
    pub fn vocab(&self) -> usize {
        self.tokenizer.vocab_size()
    }
}
