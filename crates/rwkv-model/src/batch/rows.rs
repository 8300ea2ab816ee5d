//! A batch's per-row GPU buffers: each row's next input token, its logits and its sampler
//! (occurrence counts, seen bits, working space, random stream, settings).

use gpu_core::{Gpu, GpuBuffer, Recorder};
use kernels::sample::{initial_state, SampleBuffers, SampleParams};

use crate::ModelError;

pub(crate) struct RowBuffers {
    rows: u64,
    vocab: u64,
    seen_row: u64,
    /// [B] u32: each row's input token of the next step (what its sampler writes).
    pub(crate) tokens: GpuBuffer,
    /// [B, V] f32.
    logits: GpuBuffer,
    counts: GpuBuffer,
    seen: GpuBuffer,
    scratch: GpuBuffer,
    state: GpuBuffer,
    params: GpuBuffer,
}

const STATE_BYTES: u64 = 12;
const PARAMS_BYTES: u64 = std::mem::size_of::<SampleParams>() as u64;

impl RowBuffers {
    pub(crate) fn new(gpu: &Gpu, rows: usize, vocab: usize, seen_row: u64) -> Result<RowBuffers, ModelError> {
        let (b, v) = (rows as u64, vocab as u64);
        Ok(RowBuffers {
            rows: b,
            vocab: v,
            seen_row,
            tokens: gpu.buffer("batch/tokens", b * 4)?,
            logits: gpu.buffer("batch/logits", b * v * 4)?,
            counts: gpu.buffer("batch/counts", b * v * 4)?,
            seen: gpu.buffer("batch/seen", b * seen_row)?,
            scratch: gpu.buffer("batch/scratch", b * v * 4)?,
            state: gpu.buffer("batch/sampler_state", b * STATE_BYTES)?,
            params: gpu.buffer("batch/params", b * PARAMS_BYTES)?,
        })
    }

    pub(crate) fn bytes(&self) -> u64 {
        [&self.tokens, &self.logits, &self.counts, &self.seen, &self.scratch, &self.state, &self.params]
            .iter()
            .map(|b| b.size())
            .sum()
    }

    /// The sampler's bindings for rows `0..n`.
    pub(crate) fn sample_buffers(&self, n: u32) -> SampleBuffers<'_> {
        let n = n as u64;
        let v = self.vocab * 4;
        SampleBuffers {
            logits: self.logits.range(0, n * v),
            counts: self.counts.range(0, n * v),
            seen: self.seen.range(0, n * self.seen_row),
            scratch: self.scratch.range(0, n * v),
            state: self.state.range(0, n * STATE_BYTES),
            out_token: self.tokens.range(0, n * 4),
            params: self.params.range(0, n * PARAMS_BYTES),
        }
    }

    /// Logits of rows `0..n`.
    pub(crate) fn logits(&self, n: u32) -> gpu_core::BufferRange<'_> {
        self.logits.range(0, n as u64 * self.vocab * 4)
    }

    /// Starts row `row` afresh: no occurrences, the random stream of `seed`, `params`, and
    /// `token` as its next input. The writes reach the GPU before `rec`'s submission and after
    /// every earlier one.
    pub(crate) fn record_reset(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        row: usize,
        params: &SampleParams,
        seed: u64,
        token: u32,
    ) {
        debug_assert!((row as u64) < self.rows);
        let r = row as u64;
        let v = self.vocab * 4;
        rec.clear(&self.counts, r * v, v);
        rec.clear(&self.seen, r * self.seen_row, self.seen_row);
        gpu.write(&self.state, r * STATE_BYTES, bytemuck::cast_slice(&initial_state(seed)));
        gpu.write(&self.params, r * PARAMS_BYTES, bytemuck::bytes_of(params));
        gpu.write(&self.tokens, r * 4, bytemuck::bytes_of(&token));
    }
}
