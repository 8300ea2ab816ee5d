//! The four time-mix LoRAs of RWKV-7 (spec §3.2 steps 4-7) as two fused projections, for one
//! token ([`LoraDecode`], two matvec dispatches) or T tokens ([`LoraPrefill`], two matmul
//! dispatches). No WGSL of its own: it composes [`crate::matvec`] / [`crate::matmul`].
//!
//! Stage 1, one dispatch over the token-shifted input `[6, T, C]` (blocks r, w, k, v, a, g):
//! `h = [tanh(W_w1·xw) | W_a1·xa | W_v1·xv | σ(W_g1·xg)]`, `[T, D]` blocks of
//! `D_w, D_a, D_v, D_g` values.
//! Stage 2, one dispatch over `h`, four segments of C rows with their own K:
//! `out = [w0 + W_w2·h_w | σ(a0 + W_a2·h_a) | σ(v0 + W_v2·h_v) | W_g2·h_g]`, `[T, C]` blocks
//! z, α, the value-residual gate and g (the time-mix core turns z into the decay
//! `exp(-0.606531·σ(z))`). The stage-2 bias is `[w0 | a0 | v0]` (3C values).
//! Layer 0 has no value LoRA ([`LoraSpec::value`] false): its segment is left out of both stages,
//! so g moves up one block ([`LoraSpec::output_block`]).
//!
//! Weights: stage 1 is W_w1, W_a1, W_v1, W_g1 stacked by rows (GGUF `time_mix_*1`, each D rows of C),
//! stage 2 is W_w2, W_a2, W_v2, W_g2 stacked by rows (`time_mix_*2`, each C rows of D). A GGUF
//! file stores w1/w2 in F32 and the others in F16, F32 or Q8_0: [`pack`] brings a stage to one
//! format (F32 when they differ, which is lossless).

pub mod reference;
#[cfg(test)]
mod tests;

use gpu_core::{BufferRange, Gpu, Recorder};

use crate::formats::{self, MatrixBytes, WeightFormat};
use crate::matmul::Matmul;
use crate::matvec::Matvec;
use crate::projection::{Activation, Projection, Segment};
use crate::Result;

/// The four LoRAs, in their order in both stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoraKind {
    /// Decay: `z = w0 + W_w2·tanh(W_w1·xw)`.
    Decay,
    /// In-context learning rate: `α = σ(a0 + W_a2·(W_a1·xa))`.
    Iclr,
    /// Value-residual gate: `σ(v0 + W_v2·(W_v1·xv))` (layers ≥ 1).
    Value,
    /// Output gate: `g = W_g2·σ(W_g1·xg)`.
    Gate,
}

impl LoraKind {
    pub const ALL: [LoraKind; 4] = [LoraKind::Decay, LoraKind::Iclr, LoraKind::Value, LoraKind::Gate];

    /// The block of the token-shifted input `[6, T, C]` (r, w, k, v, a, g) it reads.
    pub fn input_block(self) -> u32 {
        match self {
            LoraKind::Decay => 1,
            LoraKind::Iclr => 4,
            LoraKind::Value => 3,
            LoraKind::Gate => 5,
        }
    }

    /// The activation between the two matrices.
    pub fn inner(self) -> Activation {
        match self {
            LoraKind::Decay => Activation::Tanh,
            LoraKind::Gate => Activation::Sigmoid,
            LoraKind::Iclr | LoraKind::Value => Activation::None,
        }
    }

    /// The activation after the second matrix (and its bias).
    pub fn outer(self) -> Activation {
        match self {
            LoraKind::Iclr | LoraKind::Value => Activation::Sigmoid,
            LoraKind::Decay | LoraKind::Gate => Activation::None,
        }
    }

    /// Whether the second matrix adds a bias (w0, a0, v0).
    pub fn has_bias(self) -> bool {
        self != LoraKind::Gate
    }
}

/// The LoRA shapes of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoraSpec {
    /// n_embd.
    pub c: u32,
    /// Ranks D_w, D_a, D_v, D_g (D_v is ignored without the value LoRA).
    pub ranks: [u32; 4],
    /// Whether the value LoRA runs (every layer but 0).
    pub value: bool,
}

impl LoraSpec {
    /// The LoRAs this layer runs, in stage order, with their ranks.
    pub fn kinds(&self) -> Vec<(LoraKind, u32)> {
        LoraKind::ALL
            .iter()
            .zip(self.ranks)
            .filter(|(k, _)| self.value || **k != LoraKind::Value)
            .map(|(k, r)| (*k, r))
            .collect()
    }

    /// Stage 1 with its weight in `format`: `[6, T, C]` → `h`.
    pub fn stage1(&self, format: WeightFormat) -> Projection {
        let segs = self
            .kinds()
            .iter()
            .map(|&(k, rank)| Segment::new(rank, self.c).input_at(k.input_block() * self.c).activation(k.inner()))
            .collect();
        Projection::segmented(format, segs)
    }

    /// Stage 2 with its weight in `format`: `h` → `[z | α | (v gate) | g]`.
    pub fn stage2(&self, format: WeightFormat) -> Projection {
        let mut at = 0;
        let segs = self
            .kinds()
            .iter()
            .map(|&(k, rank)| {
                let s = Segment { rows: self.c, k: rank, x_offset: at, activation: k.outer(), bias: k.has_bias() };
                at += rank;
                s
            })
            .collect();
        Projection::segmented(format, segs)
    }

    /// Values of `h` per token (the sum of the ranks run).
    pub fn hidden_len(&self) -> u32 {
        self.kinds().iter().map(|k| k.1).sum()
    }

    /// Output blocks per token (4, or 3 without the value LoRA): the output is `[blocks, T, C]`.
    pub fn output_blocks(&self) -> u32 {
        self.kinds().len() as u32
    }

    /// The `[T, C]` block of the output holding `kind`'s result, if this layer runs it.
    pub fn output_block(&self, kind: LoraKind) -> Option<u32> {
        self.kinds().iter().position(|k| k.0 == kind).map(|i| i as u32)
    }
}

/// One LoRA matrix as stored in the GGUF file.
#[derive(Clone, Copy, Debug)]
pub struct LoraMatrix<'a> {
    pub format: WeightFormat,
    pub bytes: &'a [u8],
    pub rows: usize,
    pub k: usize,
}

/// Packs a stage's matrices (in stage order) into one GPU weight: in their common format, or
/// in F32 when their formats differ.
pub fn pack(matrices: &[LoraMatrix<'_>]) -> Result<(WeightFormat, Vec<u32>)> {
    let format = matrices.first().map_or(WeightFormat::F32, |m| m.format);
    if matrices.iter().all(|m| m.format == format) {
        let mats: Vec<MatrixBytes<'_>> =
            matrices.iter().map(|m| MatrixBytes { bytes: m.bytes, rows: m.rows, k: m.k }).collect();
        return Ok((format, formats::pack_matrices(format, &mats)?));
    }
    let mut values = Vec::new();
    for m in matrices {
        let v = formats::dequantize(m.format, m.bytes)?;
        if v.len() != m.rows * m.k {
            return Err(crate::KernelError::Shape {
                kernel: "lora",
                what: "matrix values",
                found: v.len() as u64,
                why: "do not match rows x K",
            });
        }
        values.extend(v);
    }
    Ok((WeightFormat::F32, formats::pack_f32(&values)))
}

/// The buffers of one LoRA call: the token-shifted input `[6, T, C]`, the two packed weights, the
/// stage-2 bias `[w0 | a0 | v0]` (`[w0 | a0]` at layer 0), the scratch `h` (hidden_len x T values,
/// rounded up to a multiple of 4: it is stage 2's vec4 input) and the output (`output_blocks` x T x C).
#[derive(Clone, Copy, Debug)]
pub struct LoraBuffers<'a> {
    pub x: BufferRange<'a>,
    pub stage1: BufferRange<'a>,
    pub stage2: BufferRange<'a>,
    pub bias: BufferRange<'a>,
    pub hidden: BufferRange<'a>,
    pub out: BufferRange<'a>,
}

/// The four LoRAs for one token: two matvec dispatches.
pub struct LoraDecode {
    stage1: Matvec,
    stage2: Matvec,
}

impl LoraDecode {
    pub fn new(gpu: &Gpu, spec: &LoraSpec, format1: WeightFormat, format2: WeightFormat) -> Result<Self> {
        Ok(LoraDecode {
            stage1: Matvec::new(gpu, &spec.stage1(format1))?,
            stage2: Matvec::new(gpu, &spec.stage2(format2))?,
        })
    }

    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder<'_>, b: &LoraBuffers<'_>) -> Result<()> {
        self.stage1.record(gpu, rec, b.x, &[b.stage1], None, b.hidden)?;
        self.stage2.record(gpu, rec, b.hidden, &[b.stage2], Some(b.bias), b.out)
    }
}

/// The four LoRAs for T tokens: two matmul dispatches.
pub struct LoraPrefill {
    stage1: Matmul,
    stage2: Matmul,
}

impl LoraPrefill {
    pub fn new(gpu: &Gpu, spec: &LoraSpec, format1: WeightFormat, format2: WeightFormat) -> Result<Self> {
        Ok(LoraPrefill {
            stage1: Matmul::new(gpu, &spec.stage1(format1))?,
            stage2: Matmul::new(gpu, &spec.stage2(format2))?,
        })
    }

    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder<'_>, t: u32, b: &LoraBuffers<'_>) -> Result<()> {
        self.stage1.record(gpu, rec, t, b.x, &[b.stage1], None, b.hidden)?;
        self.stage2.record(gpu, rec, t, b.hidden, &[b.stage2], Some(b.bias), b.out)
    }
}
