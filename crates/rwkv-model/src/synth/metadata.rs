//! The metadata keys of an RWKV-7 GGUF as llama.cpp's converter writes them (same keys, types and
//! tokenizer entries as the golden files).

use gguf_file::{GgufWriter, MetadataArray, MetadataValue};

use super::SynthConfig;
use crate::tokenizer::{world_token_types, world_tokens, WORLD_CHAT_TEMPLATE, WORLD_EOT_TOKEN_ID};

/// `rwkv7.context_length` as the converter writes it (meaningless for an RNN).
const CONTEXT_LENGTH: u32 = 1 << 20;
const LAYER_NORM_EPS: f32 = 1e-5;

/// Sets every metadata key of a synthetic model with `params` weights.
pub(super) fn set_metadata(writer: &mut GgufWriter<'_>, config: &SynthConfig, params: u64) {
    let s = &config.shape;
    let u32_of = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    writer
        .set("general.architecture", "rwkv7")
        .set("general.type", "model")
        .set("general.name", format!("synthetic_s{}_L{}_C{}", config.seed, s.layers, s.width))
        .set("general.size_label", size_label(params))
        .set("rwkv7.context_length", CONTEXT_LENGTH)
        .set("rwkv7.embedding_length", u32_of(s.width))
        .set("rwkv7.block_count", u32_of(s.layers))
        .set("rwkv7.attention.layer_norm_epsilon", LAYER_NORM_EPS)
        .set("rwkv7.wkv.head_size", u32_of(s.head_size))
        .set("rwkv7.attention.decay_lora_rank", u32_of(s.ranks.decay))
        .set("rwkv7.attention.iclr_lora_rank", u32_of(s.ranks.iclr))
        .set("rwkv7.attention.value_residual_mix_lora_rank", u32_of(s.ranks.value))
        .set("rwkv7.attention.gate_lora_rank", u32_of(s.ranks.gate))
        .set("rwkv7.feed_forward_length", u32_of(s.ffn))
        .set("general.file_type", config.file_type.llama_ftype())
        .set("rwkv7.attention.head_count", 0u32)
        .set("general.quantization_version", 2u32)
        .set("tokenizer.ggml.model", "rwkv")
        .set("tokenizer.ggml.tokens", MetadataValue::Array(MetadataArray::String(world_tokens())))
        .set("tokenizer.ggml.token_type", MetadataValue::Array(MetadataArray::I32(world_token_types())))
        .set("tokenizer.ggml.bos_token_id", 0u32)
        .set("tokenizer.ggml.eos_token_id", 0u32)
        .set("tokenizer.ggml.eot_token_id", WORLD_EOT_TOKEN_ID)
        .set("tokenizer.chat_template", WORLD_CHAT_TEMPLATE);
}

/// `general.size_label` the way gguf-py writes it: at least two significant digits, K/M/B/T suffix
/// (17 241 344 → "17M", 2.95e9 → "3.0B").
pub(super) fn size_label(params: u64) -> String {
    let p = params as f64;
    let (scaled, suffix) = match p {
        p if p > 1e12 => (p / 1e12, "T"),
        p if p > 1e9 => (p / 1e9, "B"),
        p if p > 1e6 => (p / 1e6, "M"),
        p => (p / 1e3, "K"),
    };
    let digits = (scaled.round() as u64).to_string().trim_start_matches('0').len();
    let decimals = 2usize.saturating_sub(digits);
    format!("{scaled:.decimals$}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::size_label;

    #[test]
    fn size_labels_like_gguf_py() {
        assert_eq!(size_label(17_241_344), "17M");
        assert_eq!(size_label(191_000_000), "191M");
        assert_eq!(size_label(2_950_000_000), "3.0B");
        assert_eq!(size_label(7_200_000_000), "7.2B");
        assert_eq!(size_label(450_000_000), "450M");
        assert_eq!(size_label(5_000), "5.0K");
    }
}
