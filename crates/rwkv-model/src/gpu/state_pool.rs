//! [`StatePool`]: the recurrent states of a batch's rows, one slot per row, laid out so that a
//! layer's rows are contiguous for the kernels that advance every row at once.

use gpu_core::{BufferRange, Gpu, GpuBuffer, Recorder};

use crate::gpu::state::State;
use crate::gpu::Dims;
use crate::ModelError;

/// `slots` recurrent states. Per layer, the token-shift vectors of every slot are one `[S, C]`
/// block (`[L, S, C]` in all) and the WKV states one `[S, H, N, N]` block: row `r` of a batched
/// step advances slot `r`. Unlike a [`State`] there is no parity: the batched kernels update
/// the shift vectors in place.
pub struct StatePool {
    dims: Dims,
    slots: usize,
    shift_att: GpuBuffer,
    shift_ffn: GpuBuffer,
    wkv: GpuBuffer,
}

impl StatePool {
    pub(crate) fn new(gpu: &Gpu, dims: Dims, slots: usize) -> Result<StatePool, ModelError> {
        let vec_bytes = (dims.n_layer * slots * dims.c * 4) as u64;
        let wkv_bytes = vec_bytes * dims.head_size as u64;
        Ok(StatePool {
            dims,
            slots,
            shift_att: gpu.buffer("pool/shift_att", vec_bytes)?,
            shift_ffn: gpu.buffer("pool/shift_ffn", vec_bytes)?,
            wkv: gpu.buffer("pool/wkv", wkv_bytes)?,
        })
    }

    /// Bytes of its GPU buffers.
    pub fn bytes(&self) -> u64 {
        self.shift_att.size() + self.shift_ffn.size() + self.wkv.size()
    }

    fn vec_bytes(&self) -> u64 {
        (self.dims.c * 4) as u64
    }

    fn wkv_bytes(&self) -> u64 {
        self.vec_bytes() * self.dims.head_size as u64
    }

    /// Offset of `slot`'s vector of `layer` in a shift buffer.
    fn vec_at(&self, layer: usize, slot: usize) -> u64 {
        (layer * self.slots + slot) as u64 * self.vec_bytes()
    }

    fn wkv_at(&self, layer: usize, slot: usize) -> u64 {
        (layer * self.slots + slot) as u64 * self.wkv_bytes()
    }

    /// The ln1 shift vectors of rows `0..n` of `layer` (`[n, C]`).
    pub(crate) fn shift_att(&self, layer: usize, n: u32) -> BufferRange<'_> {
        self.shift_att.range(self.vec_at(layer, 0), n as u64 * self.vec_bytes())
    }

    pub(crate) fn shift_ffn(&self, layer: usize, n: u32) -> BufferRange<'_> {
        self.shift_ffn.range(self.vec_at(layer, 0), n as u64 * self.vec_bytes())
    }

    /// The WKV states of rows `0..n` of `layer` (`[n, H, N, N]`).
    pub(crate) fn wkv(&self, layer: usize, n: u32) -> BufferRange<'_> {
        self.wkv.range(self.wkv_at(layer, 0), n as u64 * self.wkv_bytes())
    }

    /// Records copies of `state` (its current halves) into `slot`.
    pub(crate) fn record_load(&self, rec: &mut Recorder<'_>, slot: usize, state: &State) {
        let (v, w) = (self.vec_bytes(), self.wkv_bytes());
        for l in 0..self.dims.n_layer {
            let (att, ffn) = (state.shift_att(l), state.shift_ffn(l));
            rec.copy(att.buffer, att.offset, &self.shift_att, self.vec_at(l, slot), v);
            rec.copy(ffn.buffer, ffn.offset, &self.shift_ffn, self.vec_at(l, slot), v);
        }
        for l in 0..self.dims.n_layer {
            let src = state.wkv(l);
            rec.copy(src.buffer, src.offset, &self.wkv, self.wkv_at(l, slot), w);
        }
    }

    /// Records copies of `slot` into `state` (half 0 of its shift vectors, which becomes its
    /// current half when the recording is submitted: call before submitting, with no other
    /// use of `state` in between).
    pub(crate) fn record_save(&self, rec: &mut Recorder<'_>, slot: usize, state: &State) {
        let (v, w) = (self.vec_bytes(), self.wkv_bytes());
        state.set_parity(0);
        for l in 0..self.dims.n_layer {
            let (att, ffn, wkv) = (state.shift_att(l), state.shift_ffn(l), state.wkv(l));
            rec.copy(&self.shift_att, self.vec_at(l, slot), att.buffer, att.offset, v);
            rec.copy(&self.shift_ffn, self.vec_at(l, slot), ffn.buffer, ffn.offset, v);
            rec.copy(&self.wkv, self.wkv_at(l, slot), wkv.buffer, wkv.offset, w);
        }
    }

    /// Records zeroing `slot` (the start of a sequence).
    pub(crate) fn record_clear(&self, rec: &mut Recorder<'_>, slot: usize) {
        let (v, w) = (self.vec_bytes(), self.wkv_bytes());
        for l in 0..self.dims.n_layer {
            rec.clear(&self.shift_att, self.vec_at(l, slot), v);
            rec.clear(&self.shift_ffn, self.vec_at(l, slot), v);
            rec.clear(&self.wkv, self.wkv_at(l, slot), w);
        }
    }
}
