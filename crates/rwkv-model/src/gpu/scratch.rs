//! Activation buffers, allocated once at load for the largest chunk of tokens.

use gpu_core::{Gpu, GpuBuffer};

use crate::{HParams, ModelError};

pub struct Scratch {
    pub max_tokens: usize,
    /// [T] u32 token ids.
    pub tokens: GpuBuffer,
    /// [T, C] residual stream.
    pub x: GpuBuffer,
    /// [T, C] a LayerNorm output (plain path) or ln_out output.
    pub xa: GpuBuffer,
    /// [6, T, C] token-shifted inputs (mix-major).
    pub xs: GpuBuffer,
    /// [3, T, C] r, k, v.
    pub rkv: GpuBuffer,
    /// LoRA stage-1 outputs, one [T, D] block per LoRA.
    pub hidden: GpuBuffer,
    /// [4, T, C] LoRA stage-2 outputs: z, α, vgate, g.
    pub lora: GpuBuffer,
    /// [T, C] layer 0's values.
    pub v_first: GpuBuffer,
    /// [T, C] time-mix output (o ⊙ g).
    pub att: GpuBuffer,
    /// [T, F] channel-mix hidden.
    pub ffn: GpuBuffer,
    /// [V] logits of one position.
    pub logits: GpuBuffer,
}

impl Scratch {
    /// Bytes of every scratch buffer.
    pub fn bytes(&self) -> u64 {
        [
            &self.tokens,
            &self.x,
            &self.xa,
            &self.xs,
            &self.rkv,
            &self.hidden,
            &self.lora,
            &self.v_first,
            &self.att,
            &self.ffn,
            &self.logits,
        ]
        .iter()
        .map(|b| b.size())
        .sum()
    }

    pub fn new(gpu: &Gpu, hp: &HParams, max_tokens: usize) -> Result<Scratch, ModelError> {
        let (t, c) = (max_tokens as u64, hp.n_embd as u64);
        let f32s = |label: &str, n: u64| gpu.buffer(label, (n + 4) * 4);
        let hidden = (hp.d_w + hp.d_a + hp.d_v + hp.d_g) as u64;
        Ok(Scratch {
            max_tokens,
            tokens: f32s("tokens", t)?,
            x: f32s("x", t * c)?,
            xa: f32s("xa", t * c)?,
            xs: f32s("xs", 6 * t * c)?,
            rkv: f32s("rkv", 3 * t * c)?,
            hidden: f32s("hidden", t * hidden)?,
            lora: f32s("lora", 4 * t * c)?,
            v_first: f32s("v_first", t * c)?,
            att: f32s("att", t * c)?,
            ffn: f32s("ffn", t * hp.ffn as u64)?,
            logits: f32s("logits", hp.vocab as u64)?,
        })
    }
}
