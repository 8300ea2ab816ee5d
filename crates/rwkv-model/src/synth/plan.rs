//! Which tensors a synthetic model has, their GGUF shapes and types, and how each one's values are made.

use ggml_quants::QuantFormat;
use gguf_file::GgmlType;

use super::init::Init;
use super::{ModelShape, SynthError, SynthType};
use crate::tokenizer::WORLD_VOCAB_SIZE;

/// How a tensor is stored, by role (spec §2 and how llama.cpp's converter and llama-quantize type them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// 1-D vectors: always F32.
    Vector,
    /// `time_mix_w1`, `w2`, `lerp_fused`: forced to F32 by the converter, never quantized.
    ForcedF32,
    /// `a1 a2 v1 v2 g1 g2`: the converter's output type (F16 in an F16 file), never quantized by
    /// llama-quantize (so F32, as in the F32 source, in every quantized file).
    Lora,
    /// Embedding, attention and FFN projections: the file's base format.
    Matrix,
    /// The output matrix (head): Q6_K in llama-quantize's mixes.
    Output,
}

impl Role {
    /// The tensor's format, or `None` where llama-quantize refuses the row length.
    fn format(self, file: SynthType, row_len: usize) -> Option<QuantFormat> {
        match (self, file) {
            (Role::Vector | Role::ForcedF32, _) | (_, SynthType::F32) => Some(QuantFormat::F32),
            (_, SynthType::F16) => Some(QuantFormat::F16),
            (Role::Lora, _) => Some(QuantFormat::F32),
            (Role::Matrix | Role::Output, _) => llama_quantize_format(file, self == Role::Output, row_len),
        }
    }
}

/// The format llama-quantize gives a matrix it quantizes (`llama_tensor_get_type`): the file type's base
/// format, for the output matrix of a mix Q6_K (Q8_0 where its rows are not whole blocks of the base
/// format, or the base is Q8_0), then the fallback for rows that are not whole blocks.
fn llama_quantize_format(file: SynthType, output: bool, row_len: usize) -> Option<QuantFormat> {
    let base = file.base();
    if base.block_elements() == 1 {
        // F32/F16/BF16 are not quantized types: no mix, no fallback.
        return Some(base);
    }
    let target = match output && !file.is_pure() {
        true if !row_len.is_multiple_of(base.block_elements()) || base == QuantFormat::Q8_0 => QuantFormat::Q8_0,
        true => QuantFormat::Q6_K,
        false => base,
    };
    fallback_format(target, row_len)
}

/// llama-quantize's `tensor_type_fallback`: the format itself where rows are whole blocks, else Q2_K/Q3_K
/// → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, IQ4_XS → IQ4_NL (F16 where those do not fit either);
/// `None` for a 32-value format, which has no fallback (llama-quantize stops with an error).
pub(super) fn fallback_format(target: QuantFormat, row_len: usize) -> Option<QuantFormat> {
    if row_len.is_multiple_of(target.block_elements()) {
        return Some(target);
    }
    let fallback = match target {
        QuantFormat::Q2_K | QuantFormat::Q3_K => QuantFormat::Q4_0,
        QuantFormat::Q4_K => QuantFormat::Q5_0,
        QuantFormat::Q5_K => QuantFormat::Q5_1,
        QuantFormat::Q6_K => QuantFormat::Q8_0,
        QuantFormat::IQ4_XS => QuantFormat::IQ4_NL,
        _ => return None,
    };
    Some(if row_len.is_multiple_of(fallback.block_elements()) { fallback } else { QuantFormat::F16 })
}

/// The GGUF type of a format (the same ids; `quant_exact` checks the two tables agree).
pub(super) fn ggml_type_of(format: QuantFormat) -> GgmlType {
    match format {
        QuantFormat::F32 => GgmlType::F32,
        QuantFormat::F16 => GgmlType::F16,
        QuantFormat::BF16 => GgmlType::BF16,
        QuantFormat::Q4_0 => GgmlType::Q4_0,
        QuantFormat::Q4_1 => GgmlType::Q4_1,
        QuantFormat::Q5_0 => GgmlType::Q5_0,
        QuantFormat::Q5_1 => GgmlType::Q5_1,
        QuantFormat::Q8_0 => GgmlType::Q8_0,
        QuantFormat::Q2_K => GgmlType::Q2_K,
        QuantFormat::Q3_K => GgmlType::Q3_K,
        QuantFormat::Q4_K => GgmlType::Q4_K,
        QuantFormat::Q5_K => GgmlType::Q5_K,
        QuantFormat::Q6_K => GgmlType::Q6_K,
        QuantFormat::IQ4_NL => GgmlType::IQ4_NL,
        QuantFormat::IQ4_XS => GgmlType::IQ4_XS,
    }
}

/// One tensor of the file.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TensorPlan {
    pub name: String,
    /// ggml order, `ne[0]` fastest.
    pub dims: Vec<u64>,
    pub format: QuantFormat,
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

/// Every tensor of a model of `shape` stored as `file`, in file order, or the first tensor whose rows
/// llama-quantize would refuse for that type.
pub(super) fn plan_tensors(shape: &ModelShape, file: SynthType) -> Result<Vec<TensorPlan>, SynthError> {
    let (c, f, v) = (shape.width as u64, shape.ffn as u64, WORLD_VOCAB_SIZE as u64);
    let r = shape.ranks;
    let mut out = Vec::new();
    let mut refused = None;
    let mut add = |name: String, dims: Vec<u64>, role: Role, init: Init, stream: Option<String>| {
        let row_len = dims[0] as usize;
        let Some(format) = role.format(file, row_len) else {
            refused.get_or_insert(SynthError::NoFallback { tensor: name, file_type: file, row_len });
            return;
        };
        let stream = stream.unwrap_or_else(|| name.clone());
        out.push(TensorPlan { name, dims, format, ggml_type: ggml_type_of(format), init, stream });
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
    add("output.weight".into(), vec![c, v], Role::Output, Init::Normal { std: 3.0 / (c as f32).sqrt() }, None);
    match refused {
        Some(error) => Err(error),
        None => Ok(out),
    }
}
