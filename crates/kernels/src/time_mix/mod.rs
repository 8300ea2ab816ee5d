//! The RWKV-7 time-mix core (spec §3.2 steps 4-13, §4): per head, everything between the
//! r/k/v/LoRA projections and the output projection, for T >= 1 tokens in order, updating the
//! WKV state. One workgroup of N invocations per head; invocation i keeps row i of the head's
//! state in registers.
//!
//! Two kernels share `time_mix.wgsl` (all bindings in group 0; C = H·N, T = token count):
//!
//! [`TimeMix`] (entry `time_mix`, 6 storage buffers + 1 uniform), in either [`RowMode`]:
//! [`RowMode::Sequence`] runs T consecutive tokens of one sequence in order (H workgroups);
//! [`RowMode::Independent`] runs row t as the one token of its own sequence t, with its own
//! state, exactly as a Sequence call of that token would (H·T workgroups).
//! Multi-token inputs are segment-major, as the projections write them: each segment's T rows
//! are one contiguous [T, C] block.
//! - 0 `rkv` [3, T, C] read: the r, k and v blocks;
//! - 1 `lora` [4, T, C] read: the z block (= w0 + w2·tanh(w1·x), before the decay), α (sigmoid
//!   applied), vgate (sigmoid applied) and g (final gate); layer 0 has no vgate block: [3, T, C]
//!   = z, α, g;
//! - 2 `params` [≥ 5, C] read: rows in [`ParamRow`] order (the first [`ParamRow::CORE_ROWS`]);
//! - 3 `v_first` [T, C] read_write: written in layer 0, read in the others;
//! - 4 `state` read_write, f32: Sequence [H, N, N] (`S[h][i][j]` at h·N² + i·N + j);
//!   Independent [T, H, N, N] (row t's state at t·H·N²);
//! - 5 `out` [T, C] write: `o ⊙ g`, the input of the output projection;
//! - 6 `dims` uniform: the token count (owned by the launcher).
//!
//! [`TimeMixLora`] (entry `time_mix_lora`, 7 storage buffers + 1 uniform; Sequence mode only)
//! also does the second
//! stage of the four LoRAs: bindings 0 and 2-6 as above, binding 1 unused, and
//! - 7 `hidden` [Dw·T | Da·T | Dv·T | Dg·T] read: stage-1 outputs with their middle activations
//!   applied (tanh(w1·x), a1·x, v1·x, σ(g1·x)), one [T, D] block per LoRA;
//! - 8 `lora_bt` read: F32 stage-2 matrices transposed, w2ᵀ [Dw, C], a2ᵀ [Da, C], v2ᵀ [Dv, C],
//!   g2ᵀ [Dg, C], packed in that order ([`transpose_lora_b`] makes it from the GGUF row-major
//!   `time_mix_*2` matrices, ne [D, C]);
//! - `params` [≥ 8, C]: all of [`ParamRow`] (w0, a0, v0 too);
//!
//! and computes z = w0 + w2·h_w, α = σ(a0 + a2·h_a), vgate = σ(v0 + v2·h_v), g = g2·h_g. It runs
//! SPLIT·N invocations per head (SPLIT up to 8 where the device allows): all of them share the stage-2
//! products, reading the transposed matrices along C in coalesced vec4s, 16 rows per invocation in
//! flight at once, and the first N run the state update. Every global load of a token is issued
//! before its first barrier (decode is latency-bound here: 40 workgroups at 2.9B).

mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::KernelError;
use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

use crate::row_mode::ModePipelines;
use crate::token_count::TokenCounts;
use crate::RowMode;
pub use reference::{lora_stage2, time_mix, time_mix_in_mode};

/// GroupNorm epsilon of ln_x (hard-coded in the official code and llama.cpp).
pub const GROUP_NORM_EPS: f32 = 64e-5;
/// Epsilon of the per-head L2 normalization of κ.
pub const L2_NORM_EPS: f32 = 1e-12;
/// Largest supported head size (the register array of one state row).
pub const MAX_HEAD_SIZE: u32 = 64;

/// Rows of the `params` buffer ([rows, C], row r at r·C), in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ParamRow {
    /// `time_mix_k_k`
    KK = 0,
    /// `time_mix_k_a`
    KA = 1,
    /// `time_mix_r_k` (flattened, h·N + n)
    RK = 2,
    /// `time_mix_ln.weight`
    LnxWeight = 3,
    /// `time_mix_ln.bias`
    LnxBias = 4,
    /// `time_mix_w0` (fused variant only)
    W0 = 5,
    /// `time_mix_a0` (fused variant only)
    A0 = 6,
    /// `time_mix_v0` (fused variant only; unused in layer 0)
    V0 = 7,
}

impl ParamRow {
    pub const ALL: [ParamRow; 8] = [
        ParamRow::KK,
        ParamRow::KA,
        ParamRow::RK,
        ParamRow::LnxWeight,
        ParamRow::LnxBias,
        ParamRow::W0,
        ParamRow::A0,
        ParamRow::V0,
    ];
    /// Rows [`TimeMix`] reads.
    pub const CORE_ROWS: u32 = 5;
    /// Rows [`TimeMixLora`] reads.
    pub const FUSED_ROWS: u32 = 8;
}

/// Per-layer shape of the time-mix core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeMixShape {
    pub heads: u32,
    /// N: a multiple of 4, at most [`MAX_HEAD_SIZE`] (64 in every official model).
    pub head_size: u32,
    /// Layer 0: writes `v_first` instead of mixing with it.
    pub first_layer: bool,
}

impl TimeMixShape {
    pub fn channels(&self) -> u64 {
        self.heads as u64 * self.head_size as u64
    }
}

/// Ranks of the four LoRAs (decay w, ICLR a, value residual v, gate g).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoraRanks {
    pub w: u32,
    pub a: u32,
    pub v: u32,
    pub g: u32,
}

impl LoraRanks {
    pub fn total(&self) -> u64 {
        self.w as u64 + self.a as u64 + self.v as u64 + self.g as u64
    }
}

const WGSL: &str = include_str!(concat!(env!("OUT_DIR"), "/time_mix.wgsl"));
const NEEDS: Needs = Needs { shader_f16: false, subgroups: false, cooperative_matrix: false };

pub const KERNEL: KernelSource = KernelSource {
    name: "time_mix",
    wgsl: WGSL,
    entry: "time_mix",
    bindings: &[
        Binding::read(0, 0, "rkv"),
        Binding::read(0, 1, "lora"),
        Binding::read(0, 2, "params"),
        Binding::read_write(0, 3, "v_first"),
        Binding::read_write(0, 4, "state"),
        Binding::read_write(0, 5, "out"),
        Binding::uniform(0, 6, "dims"),
    ],
    needs: NEEDS,
};

pub const KERNEL_LORA: KernelSource = KernelSource {
    name: "time_mix_lora",
    wgsl: WGSL,
    entry: "time_mix_lora",
    bindings: &[
        Binding::read(0, 0, "rkv"),
        Binding::read(0, 2, "params"),
        Binding::read_write(0, 3, "v_first"),
        Binding::read_write(0, 4, "state"),
        Binding::read_write(0, 5, "out"),
        Binding::uniform(0, 6, "dims"),
        Binding::read(0, 7, "hidden"),
        Binding::read(0, 8, "lora_bt"),
    ],
    needs: NEEDS,
};

const NAME: &str = "time_mix";
const NAME_LORA: &str = "time_mix_lora";

fn check_shape(kernel: &'static str, shape: TimeMixShape) -> crate::Result<()> {
    crate::check_shape(kernel, "heads", shape.heads, shape.heads > 0)?;
    let n = shape.head_size;
    crate::check_shape(kernel, "head_size", n, n > 0 && n.is_multiple_of(4) && n <= MAX_HEAD_SIZE)?;
    Ok(())
}

fn overrides(shape: TimeMixShape) -> Vec<(&'static str, f64)> {
    vec![
        ("H", shape.heads as f64),
        ("N", shape.head_size as f64),
        ("FIRST_LAYER", if shape.first_layer { 1.0 } else { 0.0 }),
        ("EPS", GROUP_NORM_EPS as f64),
    ]
}

/// Size checks shared by both kernels, for `tokens` tokens related as `mode` says.
#[allow(clippy::too_many_arguments)]
fn check_common(
    kernel: &'static str,
    shape: TimeMixShape,
    mode: RowMode,
    tokens: u32,
    rkv: &BufferRange<'_>,
    params: (&BufferRange<'_>, u32),
    v_first: &BufferRange<'_>,
    state: &BufferRange<'_>,
    out: &BufferRange<'_>,
) -> crate::Result<()> {
    crate::check_shape(kernel, "tokens", tokens, tokens > 0)?;
    let (t, c, n) = (tokens as u64, shape.channels(), shape.head_size as u64);
    crate::check_len(kernel, "rkv", rkv.size, t * 3 * c * 4)?;
    crate::check_len(kernel, "params", params.0.size, params.1 as u64 * c * 4)?;
    crate::check_len(kernel, "v_first", v_first.size, t * c * 4)?;
    crate::check_len(kernel, "state", state.size, mode.states(tokens) as u64 * c * n * 4)?;
    crate::check_len(kernel, "out", out.size, t * c * 4)?;
    Ok(())
}

/// The unfused time-mix core: reads the finished LoRA outputs (see the module doc).
pub struct TimeMix {
    pipelines: ModePipelines,
    shape: TimeMixShape,
    counts: TokenCounts,
}

impl TimeMix {
    pub fn new(gpu: &Gpu, shape: TimeMixShape) -> crate::Result<Self> {
        check_shape(NAME, shape)?;
        let pipelines = ModePipelines::new(gpu, &KERNEL, &overrides(shape))?;
        Ok(TimeMix { pipelines, shape, counts: TokenCounts::default() })
    }

    pub fn shape(&self) -> TimeMixShape {
        self.shape
    }

    /// Runs `tokens` rows related as `mode` says: in order, carrying `state` (Sequence), or
    /// each with its own state in `state` (Independent).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        mode: RowMode,
        tokens: u32,
        rkv: BufferRange<'_>,
        lora: BufferRange<'_>,
        params: BufferRange<'_>,
        v_first: BufferRange<'_>,
        state: BufferRange<'_>,
        out: BufferRange<'_>,
    ) -> crate::Result<()> {
        let shape = self.shape;
        check_common(NAME, shape, mode, tokens, &rkv, (&params, ParamRow::CORE_ROWS), &v_first, &state, &out)?;
        let blocks = if shape.first_layer { 3 } else { 4 };
        crate::check_len(NAME, "lora", lora.size, tokens as u64 * blocks * shape.channels() * 4)?;
        // One workgroup per head and state.
        let workgroups = shape.heads.checked_mul(mode.states(tokens)).ok_or(KernelError::Shape {
            kernel: NAME,
            what: "tokens",
            found: tokens as u64,
            why: "heads x tokens workgroups exceed 2^32",
        })?;
        let dims = self.counts.get(gpu, tokens)?;
        let pipeline = self.pipelines.get(mode);
        let groups = gpu.bind_groups(pipeline, &[&[rkv, lora, params, v_first, state, out, dims.all()]])?;
        let max = gpu.caps().limits.max_compute_workgroups_per_dimension;
        rec.dispatch(pipeline, &groups, workgroups_1d(workgroups, max));
        Ok(())
    }
}

/// The `lora_bt` layout from the four row-major stage-2 matrices packed back to back (w2 [C, Dw],
/// a2 [C, Da], v2 [C, Dv], g2 [C, Dg]): each matrix transposed in place of itself.
pub fn transpose_lora_b(c: usize, ranks: LoraRanks, row_major: &[f32]) -> crate::Result<Vec<f32>> {
    let total = ranks.total() as usize;
    crate::check_len("time_mix_lora", "stage-2 matrices", row_major.len() as u64 * 4, (c * total * 4) as u64)?;
    let mut out = vec![0f32; c * total];
    let mut off = 0;
    for d in [ranks.w, ranks.a, ranks.v, ranks.g].map(|d| d as usize) {
        let (src, dst) = (&row_major[off..off + c * d], &mut out[off..off + c * d]);
        for i in 0..c {
            for j in 0..d {
                dst[j * c + i] = src[i * d + j];
            }
        }
        off += c * d;
    }
    Ok(out)
}

/// Head multiples (SPLIT) of the fused kernel's workgroup, largest first.
const LORA_SPLITS: [u32; 4] = [8, 4, 2, 1];

/// Workgroup memory of `time_mix_lora` with `wg` invocations (see the shader's workgroup arrays).
fn lora_shared_bytes(shape: TimeMixShape, ranks: LoraRanks, wg: u32) -> u64 {
    let nq = shape.head_size as u64 / 4;
    (8 * nq + ranks.total() / 4 + 4 * wg as u64) * 16
}

/// The fused decode variant: also does the LoRAs' second stage (see the module doc).
pub struct TimeMixLora {
    pipeline: Arc<Pipeline>,
    shape: TimeMixShape,
    ranks: LoraRanks,
    counts: TokenCounts,
}

impl TimeMixLora {
    /// Ranks must be multiples of 4; w, a and g must be non-zero, v may be 0 in layer 0.
    pub fn new(gpu: &Gpu, shape: TimeMixShape, ranks: LoraRanks) -> crate::Result<Self> {
        check_shape(NAME_LORA, shape)?;
        let rank_ok = |r: u32, zero_ok: bool| r.is_multiple_of(4) && (zero_ok || r > 0);
        crate::check_shape(NAME_LORA, "decay LoRA rank", ranks.w, rank_ok(ranks.w, false))?;
        crate::check_shape(NAME_LORA, "ICLR LoRA rank", ranks.a, rank_ok(ranks.a, false))?;
        crate::check_shape(NAME_LORA, "value LoRA rank", ranks.v, rank_ok(ranks.v, shape.first_layer))?;
        crate::check_shape(NAME_LORA, "gate LoRA rank", ranks.g, rank_ok(ranks.g, false))?;
        let limits = &gpu.caps().limits;
        // A CPU runs a workgroup's invocations in turn, so the idle ones of a split only add
        // barrier work there: one head-sized workgroup (2x faster on lavapipe at 0.1B).
        let splits: &[u32] = if gpu.caps().is_cpu() { &[1] } else { &LORA_SPLITS };
        let wg = splits
            .iter()
            .map(|s| s * shape.head_size)
            .find(|&wg| {
                wg <= limits.max_compute_invocations_per_workgroup
                    && wg <= limits.max_compute_workgroup_size_x
                    && lora_shared_bytes(shape, ranks, wg) <= limits.max_compute_workgroup_storage_size as u64
            })
            .ok_or(KernelError::Shape {
                kernel: NAME_LORA,
                what: "workgroup memory bytes",
                found: lora_shared_bytes(shape, ranks, shape.head_size),
                why: "exceeds the device's max_compute_workgroup_storage_size",
            })?;
        let mut ov = overrides(shape);
        ov.extend([
            ("LORA_WG", wg as f64),
            ("RANK_W", ranks.w as f64),
            ("RANK_A", ranks.a as f64),
            ("RANK_V", ranks.v as f64),
            ("RANK_G", ranks.g as f64),
        ]);
        let pipeline = gpu.pipeline(&KERNEL_LORA, &ov)?;
        Ok(TimeMixLora { pipeline, shape, ranks, counts: TokenCounts::default() })
    }

    pub fn shape(&self) -> TimeMixShape {
        self.shape
    }

    pub fn ranks(&self) -> LoraRanks {
        self.ranks
    }

    /// Runs `tokens` tokens in order, carrying `state`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        tokens: u32,
        rkv: BufferRange<'_>,
        hidden: BufferRange<'_>,
        lora_bt: BufferRange<'_>,
        params: BufferRange<'_>,
        v_first: BufferRange<'_>,
        state: BufferRange<'_>,
        out: BufferRange<'_>,
    ) -> crate::Result<()> {
        let shape = self.shape;
        check_common(
            NAME_LORA,
            shape,
            RowMode::Sequence,
            tokens,
            &rkv,
            (&params, ParamRow::FUSED_ROWS),
            &v_first,
            &state,
            &out,
        )?;
        let total = self.ranks.total();
        crate::check_len(NAME_LORA, "hidden", hidden.size, tokens as u64 * total * 4)?;
        crate::check_len(NAME_LORA, "lora_bt", lora_bt.size, shape.channels() * total * 4)?;
        let dims = self.counts.get(gpu, tokens)?;
        let groups =
            gpu.bind_groups(&self.pipeline, &[&[rkv, params, v_first, state, out, dims.all(), hidden, lora_bt]])?;
        let max = gpu.caps().limits.max_compute_workgroups_per_dimension;
        rec.dispatch(&self.pipeline, &groups, workgroups_1d(shape.heads, max));
        Ok(())
    }
}
