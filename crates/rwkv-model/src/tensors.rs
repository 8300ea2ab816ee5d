//! The tensors of an RWKV-7 GGUF (spec §2): names and expected shapes (ggml `ne` order), the check of a
//! file against that table, and the one list of the ggml types the engine can run ([`weight_format`]).

use gguf_file::{GgmlType, GgufFile};
use kernels::formats::WeightFormat;

use crate::error::{shape_string, ModelError};
use crate::hparams::HParams;

/// What a tensor is used for, which decides the types it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorRole {
    /// A 2-D weight matrix used in a matrix-vector product: any type of [`weight_format`], kept in
    /// that format.
    Matrix,
    /// A vector (or the stacked token-shift mixes): any type the engine runs, upcast to f32 at load.
    Vector,
    /// Layer 0's `time_mix_v0/v1/v2`: written by the converter as copies of `a0/a1/a2` and never used.
    /// Accepted with any shape and type, or absent.
    Placeholder,
}

/// One row of the expected tensor table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedTensor {
    /// The GGUF tensor name.
    pub name: String,
    /// Expected dimensions, ggml order (`ne[0]` fastest). Trailing 1s are not significant.
    pub ne: Vec<u64>,
    /// Which types the tensor may have, and whether it is used.
    pub role: TensorRole,
}

/// `blk.{layer}.{suffix}`.
pub fn blk(layer: usize, suffix: &str) -> String {
    format!("blk.{layer}.{suffix}")
}

/// Every tensor an RWKV-7 GGUF with these hyperparameters holds, in a stable order: the model-level
/// tensors, then each layer's.
pub fn expected_tensors(hp: &HParams) -> Vec<ExpectedTensor> {
    use TensorRole::{Matrix, Placeholder, Vector};
    let (c, v, f) = (hp.n_embd as u64, hp.vocab as u64, hp.ffn as u64);
    let (dw, da, dv, dg) = (hp.d_w as u64, hp.d_a as u64, hp.d_v as u64, hp.d_g as u64);
    let mut out = Vec::new();
    let mut add = |name: String, ne: &[u64], role| out.push(ExpectedTensor { name, ne: ne.to_vec(), role });
    add("token_embd.weight".into(), &[c, v], Matrix);
    add("token_embd_norm.weight".into(), &[c], Vector);
    add("token_embd_norm.bias".into(), &[c], Vector);
    add("output_norm.weight".into(), &[c], Vector);
    add("output_norm.bias".into(), &[c], Vector);
    add("output.weight".into(), &[c, v], Matrix);
    for l in 0..hp.n_layer {
        let b = |s: &str| blk(l, s);
        for norm in ["attn_norm", "attn_norm_2", "time_mix_ln"] {
            add(b(&format!("{norm}.weight")), &[c], Vector);
            add(b(&format!("{norm}.bias")), &[c], Vector);
        }
        add(b("time_mix_lerp_fused.weight"), &[c, 1, 1, 6], Vector);
        add(b("time_mix_w0.weight"), &[c], Vector);
        add(b("time_mix_w1.weight"), &[c, dw], Matrix);
        add(b("time_mix_w2.weight"), &[dw, c], Matrix);
        add(b("time_mix_a0.weight"), &[c], Vector);
        add(b("time_mix_a1.weight"), &[c, da], Matrix);
        add(b("time_mix_a2.weight"), &[da, c], Matrix);
        if l == 0 {
            // The converter's copies of a0/a1/a2.
            add(b("time_mix_v0.weight"), &[c], Placeholder);
            add(b("time_mix_v1.weight"), &[c, da], Placeholder);
            add(b("time_mix_v2.weight"), &[da, c], Placeholder);
        } else {
            add(b("time_mix_v0.weight"), &[c], Vector);
            add(b("time_mix_v1.weight"), &[c, dv], Matrix);
            add(b("time_mix_v2.weight"), &[dv, c], Matrix);
        }
        add(b("time_mix_g1.weight"), &[c, dg], Matrix);
        add(b("time_mix_g2.weight"), &[dg, c], Matrix);
        add(b("time_mix_k_k.weight"), &[c], Vector);
        add(b("time_mix_k_a.weight"), &[c], Vector);
        add(b("time_mix_r_k.weight"), &[c], Vector);
        for m in ["receptance", "key", "value", "output"] {
            add(b(&format!("time_mix_{m}.weight")), &[c, c], Matrix);
        }
        add(b("channel_mix_lerp_k.weight"), &[c], Vector);
        add(b("channel_mix_key.weight"), &[c, f], Matrix);
        add(b("channel_mix_value.weight"), &[f, c], Matrix);
    }
    out
}

/// Dimensions padded with trailing 1s to 4, so that `[C]` and `[C, 1, 1]` compare equal as in ggml.
fn ne4(ne: &[u64]) -> Vec<u64> {
    let mut v = ne.to_vec();
    v.resize(4.max(ne.len()), 1);
    v
}

/// True for the ggml types the engine can run (those with a [`weight_format`]).
pub fn gpu_supports(ty: GgmlType) -> bool {
    weight_format(ty).is_some()
}

/// The names of the types the engine can run, for messages (`"F32, F16, Q8_0"`).
pub fn gpu_supported_names() -> String {
    GgmlType::all().filter(|&ty| gpu_supports(ty)).map(GgmlType::name).collect::<Vec<_>>().join(", ")
}

/// Checks `file` against [`expected_tensors`]: every expected tensor present (placeholders optional) with
/// its shape, and no other tensor. Types are checked separately ([`check_types`]): a file of a type the
/// engine cannot run is still a well-formed RWKV-7 model.
pub fn validate_tensors(file: &GgufFile, hp: &HParams) -> Result<(), ModelError> {
    let path = || file.path().to_path_buf();
    let expected = expected_tensors(hp);
    for e in &expected {
        let Some(t) = file.tensor(&e.name) else {
            if e.role == TensorRole::Placeholder {
                continue;
            }
            return Err(ModelError::MissingTensor { path: path(), tensor: e.name.clone() });
        };
        if e.role == TensorRole::Placeholder {
            continue;
        }
        if ne4(&t.info.dims) != ne4(&e.ne) {
            return Err(ModelError::WrongShape {
                path: path(),
                tensor: e.name.clone(),
                expected: shape_string(&e.ne),
                found: shape_string(&t.info.dims),
            });
        }
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|e| e.name.as_str()).collect();
    if let Some(extra) = file.tensor_infos().iter().find(|t| !known.contains(t.name.as_str())) {
        let hint = if extra.name.starts_with("blk.") {
            " (not a tensor of an RWKV-7 block)".to_string()
        } else {
            String::new()
        };
        return Err(ModelError::UnexpectedTensor { path: path(), tensor: extra.name.clone(), hint });
    }
    Ok(())
}

/// The kernels' weight format of a tensor stored as `ty`; `None` for the types the kernels cannot
/// read. The one place where ggml types meet the engine's formats: every type `ggml_quants`
/// decodes (F32, F16, BF16, Q4_0 ... Q8_0, Q2_K ... Q6_K, IQ4_NL, IQ4_XS) runs on the GPU.
pub fn weight_format(ty: GgmlType) -> Option<WeightFormat> {
    ggml_quants::QuantFormat::from_ggml_type_id(ty.id()).map(WeightFormat::of_quant)
}

/// Refuses the first tensor the engine would use whose type it cannot run ([`gpu_supports`]); layer 0's
/// placeholders are never used and may have any type.
pub fn check_types(file: &GgufFile, hp: &HParams) -> Result<(), ModelError> {
    for e in expected_tensors(hp).iter().filter(|e| e.role != TensorRole::Placeholder) {
        if let Some(t) = file.tensor(&e.name).filter(|t| !gpu_supports(t.info.ggml_type)) {
            return Err(unsupported(file, &e.name, t.info.ggml_type));
        }
    }
    Ok(())
}

pub(crate) fn unsupported(file: &GgufFile, tensor: &str, ty: GgmlType) -> ModelError {
    ModelError::UnsupportedType {
        path: file.path().to_path_buf(),
        tensor: tensor.to_string(),
        ggml_type: ty.name(),
        id: ty.id(),
        why: "the engine has no kernels for it",
        supported: gpu_supported_names(),
    }
}
