//! The built-in RWKV World vocabulary (`rwkv_vocab_v20230424`, as llama.cpp's converter writes it into
//! `tokenizer.ggml.tokens`): `assets/world_vocab.txt` holds one escaped token per line, line i = id i.

use super::{TokenType, Tokenizer};

const WORLD_VOCAB: &str = include_str!("../../assets/world_vocab.txt");

/// Number of ids in the World vocabulary: `<s>`, 65529 byte strings, six `[PADn]`.
pub const WORLD_VOCAB_SIZE: usize = 65536;
/// First of the unused `[PADn]` ids.
const WORLD_FIRST_PAD: usize = 65530;
/// `\n\n`, written as `tokenizer.ggml.eot_token_id` by llama.cpp's converter.
pub const WORLD_EOT_TOKEN_ID: u32 = 261;
/// The `tokenizer.chat_template` llama.cpp's converter writes into RWKV-7 GGUFs.
pub const WORLD_CHAT_TEMPLATE: &str = include_str!("../../assets/world_chat_template.jinja");

/// The escaped token strings of the World vocabulary, id order.
pub fn world_tokens() -> Vec<String> {
    let mut lines: Vec<String> = WORLD_VOCAB.split('\n').map(str::to_owned).collect();
    // The file ends with a newline.
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// The `tokenizer.ggml.token_type` values of the World vocabulary: id 0 control, pads unused, others normal.
pub fn world_token_types() -> Vec<i32> {
    (0..WORLD_VOCAB_SIZE)
        .map(|id| match id {
            0 => TokenType::Control,
            id if id >= WORLD_FIRST_PAD => TokenType::Unused,
            _ => TokenType::Normal,
        } as i32)
        .collect()
}

impl Tokenizer {
    /// The World tokenizer from the built-in vocabulary (no file needed).
    pub fn world() -> Tokenizer {
        let tokens = world_tokens();
        debug_assert_eq!(tokens.len(), WORLD_VOCAB_SIZE);
        // The asset is fixed and tested; building from it cannot fail.
        Tokenizer::from_tokens(&tokens, Some(&world_token_types())).expect("built-in World vocabulary is valid")
    }
}
