//! Which tensors a synthetic model has, their GGUF shapes and types, and how each one's values are made.

use gguf_file::GgmlType;

use super::init::Init;
use super::{ModelShape, SynthType};
use crate::tokenizer::WORLD_VOCAB_SIZE;

/// How a tensor is stored, by role (spec §2 and how llama.cpp's converter and llama-quantize type them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// 1-D vectors: always F32.
    Vector,
    /// `time_mix_w1`, `w2`, `lerp_fused`: forced to F32 by the converter, never quantized.
    ForcedF32,
    /// `a1 a2 v1 v2 g1 g2`: the output type of the converter, but never quantized by llama-quantize.
    Lora,
    /// Embedding, head, attention and FFN projections: the file's main type.
    Matrix,
}

impl Role {
    fn ggml_type(self, file: SynthType, row_len: usize) -> GgmlType {
        match (self, file) {
            (Role::Vector | Role::ForcedF32, _) | (_, SynthType::F32) => GgmlType::F32,
            (Role::Lora, _) | (Role::Matrix, SynthType::F16) => GgmlType::F16,
            // Q8_0 needs whole blocks of 32 per row; the converter falls back to F16 otherwise.
            (Role::Matrix, SynthType::Q8_0) if row_len.is_multiple_of(32) => GgmlType::Q8_0,
            (Role::Matrix, SynthType::Q8_0) => GgmlType::F16,
        }
    }
}

/// One tensor of the file.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TensorPlan {
    pub name: String,
    /// ggml order, `ne[0]` fastest.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    pub init: Init,
    /// The name whose random stream the values come from: the tensor's own, or for layer 0's placeholder
    /// `v0`/`v1`/`v2` that of `a0`/`a1`/`a2`, so they are exact copies (as the converter writes them).
    pub stream: String,
}

impl TensorPlan {
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
    pub fn row_len(&self) -> usize {
        self.dims[0] as usize
    }
    pub fn bytes(&self) -> u64 {
        self.ggml_type.tensor_bytes(&self.dims).unwrap_or(0)
    }
}

/// Every tensor of a model of `shape` stored as `file`, in file order.
pub(super) fn plan_tensors(shape: &ModelShape, file: SynthType) -> Vec<TensorPlan> {
    let (c, f, v) = (shape.width as u64, shape.ffn as u64, WORLD_VOCAB_SIZE as u64);
    let r = shape.ranks;
    let mut out = Vec::new();
    let mut add = |name: String, dims: Vec<u64>, role: Role, init: Init, stream: Option<String>| {
        let ggml_type = role.ggml_type(file, dims[0] as usize);
        let stream = stream.unwrap_or_else(|| name.clone());
        out.push(TensorPlan { name, dims, ggml_type, init, stream });
    };
    let depth = Init::depth_scale(shape.layers);

    add("token_embd.weight".into(), vec![c, v], Role::Matrix, Init::Normal { std: 0.5 }, None);
    add("token_embd_norm.weight".into(), vec![c], Role::Vector, Init::NormWeight, None);
    add("token_embd_norm.bias".into(), vec![c], Role::Vector, Init::NormBias, None);
    for layer in 0..shape.layers {
        let p = |s: &str| format!("blk.{layer}.{s}");
        // Projections ~ N(0, scale / sqrt(fan_in)); fan_in is ne[0].
        let lr = |fan_in: u64, scale: f32| Init::Normal { std: scale / (fan_in as f32).sqrt() };
        add(p("attn_norm.weight"), vec![c], Role::Vector, Init::NormWeight, None);
        add(p("attn_norm.bias"), vec![c], Role::Vector, Init::NormBias, None);
        add(p("time_mix_lerp_fused.weight"), vec![c, 1, 1, 6], Role::ForcedF32, Init::LerpFused { layer }, None);
        add(p("time_mix_receptance.weight"), vec![c, c], Role::Matrix, lr(c, 1.0), None);
        add(p("time_mix_key.weight"), vec![c, c], Role::Matrix, lr(c, 0.7), None);
        add(p("time_mix_value.weight"), vec![c, c], Role::Matrix, lr(c, 1.0), None);
        add(p("time_mix_w0.weight"), vec![c], Role::Vector, Init::DecayBase { layer }, None);
        add(p("time_mix_w1.weight"), vec![c, r.decay as u64], Role::ForcedF32, lr(c, 1.0), None);
        add(p("time_mix_w2.weight"), vec![r.decay as u64, c], Role::ForcedF32, lr(r.decay as u64, 1.0), None);
        add(p("time_mix_a0.weight"), vec![c], Role::Vector, Init::IclrBase, None);
        add(p("time_mix_a1.weight"), vec![c, r.iclr as u64], Role::Lora, lr(c, 1.0), None);
        add(p("time_mix_a2.weight"), vec![r.iclr as u64, c], Role::Lora, lr(r.iclr as u64, 0.8), None);
        if layer == 0 {
            // Placeholders the converter fills with copies of a0/a1/a2 (never used by inference).
            add(p("time_mix_v0.weight"), vec![c], Role::Vector, Init::IclrBase, Some(p("time_mix_a0.weight")));
            let v1 = lr(c, 1.0);
            add(p("time_mix_v1.weight"), vec![c, r.iclr as u64], Role::Lora, v1, Some(p("time_mix_a1.weight")));
            let v2 = lr(r.iclr as u64, 0.8);
            add(p("time_mix_v2.weight"), vec![r.iclr as u64, c], Role::Lora, v2, Some(p("time_mix_a2.weight")));
        } else {
            add(p("time_mix_v0.weight"), vec![c], Role::Vector, Init::ValueMixBase, None);
            add(p("time_mix_v1.weight"), vec![c, r.value as u64], Role::Lora, lr(c, 1.0), None);
            add(p("time_mix_v2.weight"), vec![r.value as u64, c], Role::Lora, lr(r.value as u64, 0.8), None);
        }
        add(p("time_mix_g1.weight"), vec![c, r.gate as u64], Role::Lora, lr(c, 1.0), None);
        add(p("time_mix_g2.weight"), vec![r.gate as u64, c], Role::Lora, lr(r.gate as u64, 2.0), None);
        add(p("time_mix_k_k.weight"), vec![c], Role::Vector, Init::KeyNormScale, None);
        add(p("time_mix_k_a.weight"), vec![c], Role::Vector, Init::KeyIclrMix, None);
        add(p("time_mix_r_k.weight"), vec![c], Role::Vector, Init::Bonus, None);
        add(p("time_mix_ln.weight"), vec![c], Role::Vector, Init::GroupNormWeight { layer }, None);
        add(p("time_mix_ln.bias"), vec![c], Role::Vector, Init::GroupNormBias, None);
        add(p("time_mix_output.weight"), vec![c, c], Role::Matrix, lr(c, 0.6 * depth), None);
        add(p("attn_norm_2.weight"), vec![c], Role::Vector, Init::NormWeight, None);
        add(p("attn_norm_2.bias"), vec![c], Role::Vector, Init::NormBias, None);
        add(p("channel_mix_lerp_k.weight"), vec![c], Role::Vector, Init::LerpChannelMix { layer }, None);
        add(p("channel_mix_key.weight"), vec![c, f], Role::Matrix, lr(c, 1.0), None);
        add(p("channel_mix_value.weight"), vec![f, c], Role::Matrix, lr(f, 0.5 * depth), None);
    }
    add("output_norm.weight".into(), vec![c], Role::Vector, Init::NormWeight, None);
    add("output_norm.bias".into(), vec![c], Role::Vector, Init::NormBias, None);
    // Logit standard deviation about 3: LN output has norm ~sqrt(C).
    add("output.weight".into(), vec![c, v], Role::Matrix, Init::Normal { std: 3.0 / (c as f32).sqrt() }, None);
    out
}
