//! RWKV-7 hyperparameters from GGUF metadata (`rwkv7.*` keys), cross-checked against tensor shapes
//! (spec §1.1).

use std::path::Path;

use gguf_file::{GgufFile, MetadataValue};

use crate::error::ModelError;
use crate::names::blk;

/// `general.architecture` of an RWKV-7 GGUF.
pub const ARCHITECTURE: &str = "rwkv7";
/// GroupNorm epsilon of `ln_x`: not stored in GGUF; hard-coded in the official code and in llama.cpp
/// (the time-mix kernel's constant).
pub const GROUP_NORM_EPS: f32 = kernels::time_mix::GROUP_NORM_EPS;

/// GGUF key: the architecture name ([`ARCHITECTURE`] for an RWKV-7 model).
pub const KEY_ARCHITECTURE: &str = "general.architecture";
/// GGUF key (u32): C, the embedding width.
pub const KEY_EMBEDDING_LENGTH: &str = "rwkv7.embedding_length";
/// GGUF key (u32): L, the number of layers.
pub const KEY_BLOCK_COUNT: &str = "rwkv7.block_count";
/// GGUF key (u32): N, the head size.
pub const KEY_HEAD_SIZE: &str = "rwkv7.wkv.head_size";
/// GGUF key (u32): F, the channel-mix (FFN) width.
pub const KEY_FEED_FORWARD_LENGTH: &str = "rwkv7.feed_forward_length";
/// GGUF key (u32): D_w, the rank of the decay LoRA.
pub const KEY_DECAY_LORA_RANK: &str = "rwkv7.attention.decay_lora_rank";
/// GGUF key (u32): D_a, the rank of the in-context learning rate (ICLR) LoRA.
pub const KEY_ICLR_LORA_RANK: &str = "rwkv7.attention.iclr_lora_rank";
/// GGUF key (u32): D_v, the rank of the value-residual mix LoRA.
pub const KEY_VALUE_RESIDUAL_MIX_LORA_RANK: &str = "rwkv7.attention.value_residual_mix_lora_rank";
/// GGUF key (u32, optional): D_g, the rank of the gate LoRA; without it the rank comes from `time_mix_g1`.
pub const KEY_GATE_LORA_RANK: &str = "rwkv7.attention.gate_lora_rank";
/// GGUF key (f32): the LayerNorm epsilon.
pub const KEY_LAYER_NORM_EPSILON: &str = "rwkv7.attention.layer_norm_epsilon";
/// GGUF key (optional): the number of token shifts, 2 where present.
pub const KEY_TOKEN_SHIFT_COUNT: &str = "rwkv7.token_shift_count";
/// GGUF key (array of strings, optional): the vocabulary; its length must equal V.
pub const KEY_TOKENS: &str = "tokenizer.ggml.tokens";

/// The shape of an RWKV-7 model.
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    /// L: number of layers (blocks).
    pub n_layer: usize,
    /// C: embedding width.
    pub n_embd: usize,
    /// N: head size (64 in every official model).
    pub head_size: usize,
    /// H = C / N.
    pub n_head: usize,
    /// F: FFN (channel-mix) width.
    pub ffn: usize,
    /// V: vocabulary size (rows of `token_embd.weight`).
    pub vocab: usize,
    /// D_w: rank of the decay LoRA (`time_mix_w1`/`w2`, C→D_w→C).
    pub d_w: usize,
    /// D_a: rank of the in-context learning rate LoRA (`time_mix_a1`/`a2`).
    pub d_a: usize,
    /// D_v: rank of the value-residual mix LoRA (`time_mix_v1`/`v2`, layers ≥ 1).
    pub d_v: usize,
    /// D_g: rank of the gate LoRA (`time_mix_g1`/`g2`).
    pub d_g: usize,
    /// LayerNorm epsilon of ln0, ln1, ln2 and ln_out.
    pub ln_eps: f32,
}

impl HParams {
    /// Reads and cross-checks the hyperparameters of `file`. Refuses other architectures (`arwkv7`
    /// included), missing or mistyped keys, zero sizes, a width that is not a whole number of heads, and any
    /// disagreement between a key and the tensor shape it describes.
    pub fn from_gguf(file: &GgufFile) -> Result<HParams, ModelError> {
        let path = file.path();
        check_architecture(file)?;

        let n_embd = positive(file, KEY_EMBEDDING_LENGTH)?;
        let n_layer = positive(file, KEY_BLOCK_COUNT)?;
        let head_size = positive(file, KEY_HEAD_SIZE)?;
        let ffn = positive(file, KEY_FEED_FORWARD_LENGTH)?;
        let d_w = positive(file, KEY_DECAY_LORA_RANK)?;
        let d_a = positive(file, KEY_ICLR_LORA_RANK)?;
        let d_v = positive(file, KEY_VALUE_RESIDUAL_MIX_LORA_RANK)?;
        // The gate rank key is optional: without it the rank comes from the tensor.
        let d_g = match file.metadata(KEY_GATE_LORA_RANK) {
            Some(_) => positive(file, KEY_GATE_LORA_RANK)?,
            None => dim(file, &blk(0, "time_mix_g1.weight"), 1)?,
        };
        let ln_eps = match file.metadata(KEY_LAYER_NORM_EPSILON) {
            None => return Err(missing_key(path, KEY_LAYER_NORM_EPSILON)),
            Some(v) => match v.as_f64() {
                Some(e) if e > 0.0 && e < 1.0 => e as f32,
                Some(e) => return Err(bad(path, KEY_LAYER_NORM_EPSILON, e, "must lie between 0 and 1")),
                None => return Err(key_type(path, KEY_LAYER_NORM_EPSILON, "a float", v)),
            },
        };
        if let Some(v) = file.metadata(KEY_TOKEN_SHIFT_COUNT) {
            let count = v.as_u64().ok_or_else(|| key_type(path, KEY_TOKEN_SHIFT_COUNT, "an integer", v))?;
            if count != 2 {
                return Err(bad(path, KEY_TOKEN_SHIFT_COUNT, count, "RWKV-7 uses exactly 2 token shifts"));
            }
        }
        if n_embd % head_size != 0 {
            return Err(bad(
                path,
                KEY_HEAD_SIZE,
                head_size,
                &format!("the embedding width {n_embd} is not a whole number of heads of this size"),
            ));
        }

        // Cross-checks against the tensors (spec §1.1).
        let embd = "token_embd.weight";
        agree(file, KEY_EMBEDDING_LENGTH, n_embd, embd, 0)?;
        let vocab = dim(file, embd, 1)?;
        agree(file, KEY_FEED_FORWARD_LENGTH, ffn, &blk(0, "channel_mix_key.weight"), 1)?;
        agree(file, KEY_DECAY_LORA_RANK, d_w, &blk(0, "time_mix_w1.weight"), 1)?;
        agree(file, KEY_ICLR_LORA_RANK, d_a, &blk(0, "time_mix_a1.weight"), 1)?;
        agree(file, KEY_GATE_LORA_RANK, d_g, &blk(0, "time_mix_g1.weight"), 1)?;
        if n_layer > 1 {
            // Layer 0's v tensors are placeholders (copies of a0/a1/a2): the rank comes from layer 1.
            agree(file, KEY_VALUE_RESIDUAL_MIX_LORA_RANK, d_v, &blk(1, "time_mix_v1.weight"), 1)?;
        }
        check_layer_count(file, n_layer)?;
        if let Some(v) = file.metadata(KEY_TOKENS) {
            let tokens = v
                .as_array()
                .and_then(|a| a.as_strings())
                .ok_or_else(|| key_type(path, KEY_TOKENS, "an array of strings", v))?;
            if tokens.len() != vocab {
                return Err(ModelError::VocabMismatch {
                    path: path.to_path_buf(),
                    tokens: tokens.len() as u64,
                    rows: vocab as u64,
                });
            }
        }

        Ok(HParams { n_layer, n_embd, head_size, n_head: n_embd / head_size, ffn, vocab, d_w, d_a, d_v, d_g, ln_eps })
    }

    /// GroupNorm epsilon of `ln_x` ([`GROUP_NORM_EPS`]).
    pub fn group_norm_eps(&self) -> f32 {
        GROUP_NORM_EPS
    }
}

fn check_architecture(file: &GgufFile) -> Result<(), ModelError> {
    let path = file.path();
    let value = file.metadata(KEY_ARCHITECTURE).ok_or_else(|| missing_key(path, KEY_ARCHITECTURE))?;
    let arch = value.as_str().ok_or_else(|| key_type(path, KEY_ARCHITECTURE, "a string", value))?;
    if arch == ARCHITECTURE {
        return Ok(());
    }
    let hint = match arch {
        "arwkv7" => " — arwkv7 is a different, Qwen-derived architecture (RMSNorm, attention hybrid)",
        "rwkv6" | "rwkv6qwen2" => " — RWKV-6 models are not supported",
        _ => "",
    };
    Err(ModelError::WrongArchitecture { path: path.to_path_buf(), found: arch.to_string(), hint })
}

/// The block count must equal the number of blocks the tensors describe (largest `blk.N.` index plus one).
/// Checked before anything is sized by the block count.
fn check_layer_count(file: &GgufFile, n_layer: usize) -> Result<(), ModelError> {
    let mut last: Option<(usize, &str)> = None;
    for info in file.tensor_infos() {
        let Some(rest) = info.name.strip_prefix("blk.") else { continue };
        let Some(index) = rest.split('.').next().and_then(|s| s.parse::<usize>().ok()) else { continue };
        if last.is_none_or(|(i, _)| index > i) {
            last = Some((index, &info.name));
        }
    }
    let found = last.map_or(0, |(i, _)| i + 1);
    if found != n_layer {
        return Err(ModelError::HParamMismatch {
            path: file.path().to_path_buf(),
            key: KEY_BLOCK_COUNT.into(),
            value: n_layer as u64,
            tensor: last.map_or("blk.0.*".to_string(), |(_, name)| name.to_string()),
            dim: "the highest block index + 1".into(),
            found: found as u64,
        });
    }
    // Blocks below the highest without tensors are reported as missing tensors by the tensor check.
    Ok(())
}

fn positive(file: &GgufFile, key: &str) -> Result<usize, ModelError> {
    let path = file.path();
    let value = file.metadata(key).ok_or_else(|| missing_key(path, key))?;
    let n = value.as_u64().ok_or_else(|| key_type(path, key, "an unsigned integer", value))?;
    if n == 0 {
        return Err(bad(path, key, n, "must be greater than zero"));
    }
    // Sizes are later multiplied together; anything beyond 2^32 cannot be a real model dimension.
    if n > u64::from(u32::MAX) {
        return Err(bad(path, key, n, "is larger than any model dimension can be (2^32)"));
    }
    Ok(n as usize)
}

/// `ne[axis]` of a tensor that must exist.
fn dim(file: &GgufFile, tensor: &str, axis: usize) -> Result<usize, ModelError> {
    let t = file
        .tensor(tensor)
        .ok_or_else(|| ModelError::MissingTensor { path: file.path().to_path_buf(), tensor: tensor.to_string() })?;
    Ok(t.info.ne4()[axis] as usize)
}

fn agree(file: &GgufFile, key: &str, value: usize, tensor: &str, axis: usize) -> Result<(), ModelError> {
    let found = dim(file, tensor, axis)?;
    if found != value {
        return Err(ModelError::HParamMismatch {
            path: file.path().to_path_buf(),
            key: key.to_string(),
            value: value as u64,
            tensor: tensor.to_string(),
            dim: format!("ne[{axis}]"),
            found: found as u64,
        });
    }
    Ok(())
}

fn missing_key(path: &Path, key: &str) -> ModelError {
    ModelError::MissingKey { path: path.to_path_buf(), key: key.to_string() }
}

fn key_type(path: &Path, key: &str, expected: &'static str, found: &MetadataValue) -> ModelError {
    ModelError::KeyType {
        path: path.to_path_buf(),
        key: key.to_string(),
        expected,
        found: format!("{} {}", found.type_description(), found.summary(3)),
    }
}

fn bad(path: &Path, key: &str, value: impl ToString, reason: &str) -> ModelError {
    ModelError::BadHParam {
        path: path.to_path_buf(),
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}
