//! A tiny RWKV-7 GGUF built in memory from the expected tensor table, with hooks to break it.

#![allow(dead_code)]

use ggml_quants::{quantize_to_vec, QuantFormat};
use gguf_file::{f16_bytes, f32_bytes, GgmlType, GgufWriter};
use rwkv_model::hparams::*;
use rwkv_model::tensors::{expected_tensors, TensorRole};
use rwkv_model::HParams;

/// Small but with every size distinct, so that a transposed or swapped tensor cannot pass: C = 32 (two
/// heads of 16), F = 64, four different LoRA ranks, V = 8. Layer 0's placeholders get rank D_a, as the
/// converter writes them.
pub fn tiny_hparams() -> HParams {
    HParams {
        n_layer: 2,
        n_embd: 32,
        head_size: 16,
        n_head: 2,
        ffn: 64,
        vocab: 8,
        d_w: 32,
        d_a: 64,
        d_v: 96,
        d_g: 128,
        ln_eps: 1e-5,
    }
}

/// The smallest model the GPU engine takes: width 64 (four heads of 16), two layers (layer 0's
/// kernels differ from the others'), a vocabulary of 16.
pub fn gpu_tiny_hparams() -> HParams {
    HParams {
        n_layer: 2,
        n_embd: 64,
        head_size: 16,
        n_head: 4,
        ffn: 64,
        vocab: 16,
        d_w: 32,
        d_a: 32,
        d_v: 32,
        d_g: 32,
        ln_eps: 1e-5,
    }
}

/// The CPU reference's `n` greedy tokens after `prompt`, asserting a clear argmax each time (so
/// that a GPU's argmax can be compared with it).
pub fn reference_greedy(reference: &rwkv_model::reference::RefModel, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut state = rwkv_model::reference::RefState::new(reference);
    let mut logits = Vec::new();
    for &t in prompt {
        logits = reference.forward(t, &mut state);
    }
    let mut tokens = Vec::new();
    for _ in 0..n {
        let mut sorted = logits.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        assert!(sorted[0] - sorted[1] > 1e-3, "the reference's top two logits are too close to compare argmaxes");
        let best = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32;
        tokens.push(best);
        logits = reference.forward(best, &mut state);
    }
    tokens
}

/// Like [`tiny_hparams`] with all ranks 32 and F = C: a file of about 50 KB, cheap to mutate many times.
pub fn small_hparams() -> HParams {
    HParams { ffn: 32, d_w: 32, d_a: 32, d_v: 32, d_g: 32, ..tiny_hparams() }
}

/// Deterministic values in [-1, 1) for tensor `name`.
pub fn values(name: &str, n: usize) -> Vec<f32> {
    let mut h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    (0..n)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Raw bytes of `vals` in type `ty` (types the engine refuses get zero bytes of the right size).
pub fn encode(ty: GgmlType, dims: &[u64], vals: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::F32 => f32_bytes(vals),
        GgmlType::F16 => f16_bytes(vals),
        GgmlType::Q8_0 => quantize_to_vec(QuantFormat::Q8_0, vals).unwrap(),
        GgmlType::BF16 => vals.iter().flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes()).collect(),
        other => vec![0u8; other.tensor_bytes(dims).unwrap() as usize],
    }
}

/// What to do with one tensor of the table.
pub enum Edit {
    Keep,
    Drop,
    Replace(GgmlType, Vec<u64>),
}

/// The metadata of an RWKV-7 model with these hyperparameters.
pub fn set_metadata(w: &mut GgufWriter, hp: &HParams) {
    w.set(KEY_ARCHITECTURE, ARCHITECTURE)
        .set("general.name", "tiny")
        .set(KEY_EMBEDDING_LENGTH, hp.n_embd as u32)
        .set(KEY_BLOCK_COUNT, hp.n_layer as u32)
        .set(KEY_HEAD_SIZE, hp.head_size as u32)
        .set(KEY_FEED_FORWARD_LENGTH, hp.ffn as u32)
        .set(KEY_DECAY_LORA_RANK, hp.d_w as u32)
        .set(KEY_ICLR_LORA_RANK, hp.d_a as u32)
        .set(KEY_VALUE_RESIDUAL_MIX_LORA_RANK, hp.d_v as u32)
        .set(KEY_GATE_LORA_RANK, hp.d_g as u32)
        .set(KEY_LAYER_NORM_EPSILON, hp.ln_eps)
        .set("tokenizer.ggml.model", "rwkv")
        .set(KEY_TOKENS, (0..hp.vocab).map(|i| format!("t{i}")).collect::<Vec<String>>());
}

/// A model file: matrices in `matrix` (F16 where Q8_0 does not fit the row length), vectors in `vector`,
/// with `edit` applied to each tensor of the table.
pub fn build_with(
    hp: &HParams,
    matrix: GgmlType,
    vector: GgmlType,
    mut edit: impl FnMut(&str) -> Edit,
) -> GgufWriter<'static> {
    let mut w = GgufWriter::new();
    set_metadata(&mut w, hp);
    for e in expected_tensors(hp) {
        let mut ty = if e.role == TensorRole::Vector { vector } else { matrix };
        if !e.ne[0].is_multiple_of(ty.block_size()) {
            ty = GgmlType::F16;
        }
        let mut dims = e.ne.clone();
        match edit(&e.name) {
            Edit::Keep => {}
            Edit::Drop => continue,
            Edit::Replace(t, d) => {
                ty = t;
                dims = d;
            }
        }
        let n: u64 = dims.iter().product();
        let data = encode(ty, &dims, &values(&e.name, n as usize));
        w.add_tensor(e.name, ty, &dims, data);
    }
    w
}

pub fn build(hp: &HParams, matrix: GgmlType, vector: GgmlType) -> GgufWriter<'static> {
    build_with(hp, matrix, vector, |_| Edit::Keep)
}
