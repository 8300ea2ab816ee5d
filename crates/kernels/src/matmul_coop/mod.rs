//! Matrix-matrix product for prefill on tensor cores (cooperative matrices): the same
//! computation, [`Projection`] spec, bindings and `record` signature as [`crate::matmul`]
//! (`Y[T, rows] = act(X[T, K]·Wᵀ + bias)`, optionally added into `Y`, over up to four row
//! segments or a weight split into row blocks), with f16 inputs and f32 accumulation.
//!
//! Bindings (group 0), as in [`crate::matmul`]:
//! - 0 `x`, read, `array<vec4<f32>>`: the input; the binding must cover the input elements
//!   rounded up to a multiple of 4.
//! - 1 `w`, read, `array<vec4<u32>>`: the GPU layout of the weight (or of one row block).
//! - 2 `bias`, read, `[rows]` f32; when no segment has a bias the launcher binds `x` here.
//! - 3 `y`, read_write, `[T, rows]` f32 (segment-major blocks, see [`crate::projection`]).
//! - 4 `params`, uniform, `vec4<u32>` whose x is T (one small buffer per distinct T).
//! - 6 `w_d`, read, `array<u32>`: the same range as `w` (where the blocks' `d` are read; see
//!   weights.wgsl).
//!
//! A workgroup of 128 invocations computes 128 tokens x 128 weight rows of one segment with
//! 16x16x16 tensor-core tiles (see matmul_coop.wgsl). What it needs and refuses:
//! - the device: `EXPERIMENTAL_COOPERATIVE_MATRIX` with the f16 16x16x16 / f32 configuration
//!   ([`gpu_core::Capabilities::has_coop_f16_16x16x16_f32`]), subgroups of exactly 32, and
//!   [`WORKGROUP_BYTES`] of workgroup memory ([`MatmulCoop::device_supports`]);
//! - the spec: weights in any format (F16 copied, every other format decoded in f32 and rounded to
//!   f16 while staging: the block formats but Q8_0 a 32-weight chunk of weight_chunks.wgsl per
//!   row and thread, with X staged in the chunk's slot order), every K a multiple of 32 and every
//!   input offset a multiple of 4 ([`MatmulCoop::spec_supported`]).
//!
//! The pipeline is built without wgpu's runtime bounds checks (the shader guards every
//! index itself; see `new`).
//!
//! Precision: X is rounded to f16 ([`CoopPrecision::Half`], about 3 significant digits per
//! input) or split into two f16 (`hi + lo`, [`CoopPrecision::Split`], about f32 input
//! precision at twice the tensor-core work). Quantised weights are dequantised in f32 as
//! `weights.wgsl` decodes them, then rounded once to f16; F16 weights are exact.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{Binding, BufferRange, Gpu, GpuError, KernelSource, Needs, Pipeline, Recorder};

use crate::projection::{Part, Projection, MAX_SEGMENTS};
use crate::token_count::TokenCounts;
use crate::{KernelError, Result};

pub const KERNEL: KernelSource = KernelSource {
    name: "matmul_coop",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/matmul_coop.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "x"),
        Binding::read(0, 1, "w"),
        Binding::read(0, 2, "bias"),
        Binding::read_write(0, 3, "y"),
        Binding::uniform(0, 4, "params"),
        Binding::read(0, 6, "w_d"),
    ],
    needs: Needs { shader_f16: true, subgroups: false, cooperative_matrix: true },
};

/// Tokens per workgroup (BT in matmul_coop.wgsl).
pub const TILE_T: u32 = 128;
/// Weight rows per workgroup (BM in matmul_coop.wgsl).
pub const TILE_M: u32 = 128;
/// Invocations that run one cooperative operation together (the kernel splits its 128
/// invocations into 4 such groups by local index).
const LANES: u32 = 32;
/// Workgroup memory the kernel declares: three staged slices of 128 x 40 halves, four 16x16 f32
/// result tiles and the IQ4 value table of weight_chunks.wgsl (16 f32).
pub const WORKGROUP_BYTES: u32 = 3 * 128 * 40 * 2 + 4 * 256 * 4 + 16 * 4;

/// How X is rounded for the f16 tensor cores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CoopPrecision {
    /// One f16 per input (about 3 significant digits).
    #[default]
    Half,
    /// `x = hi + lo` in two f16, two products: about f32 input precision, twice the work.
    Split,
}

/// A projection for T tokens on tensor cores, with its pipelines (one per weight binding).
pub struct MatmulCoop {
    spec: Projection,
    precision: CoopPrecision,
    /// Each weight binding with its pipeline and its number of row tiles.
    parts: Vec<(Part, Arc<Pipeline>, u32)>,
    /// One uniform buffer holding T per distinct T recorded.
    /// The uniform holding T, one per token count.
    counts: TokenCounts,
}

impl MatmulCoop {
    /// Whether `gpu` can run the kernel: `Err` says what it lacks.
    pub fn device_supports(gpu: &Gpu) -> Result<()> {
        let caps = gpu.caps();
        let missing = |feature| KernelError::Gpu(GpuError::MissingFeature { kernel: KERNEL.name.into(), feature });
        if !caps.has_coop_f16_16x16x16_f32() {
            return Err(missing("EXPERIMENTAL_COOPERATIVE_MATRIX with 16x16x16 f16 tiles and f32 accumulation"));
        }
        let sg = caps.adapter_subgroup_size;
        if sg.min != LANES || sg.max != LANES {
            return Err(missing("subgroups of exactly 32 invocations"));
        }
        let l = &caps.limits;
        let over = |limit, needed: u32, granted: u32| {
            KernelError::Gpu(GpuError::LimitExceeded {
                kernel: KERNEL.name.into(),
                limit,
                needed: needed as u64,
                granted: granted as u64,
                policy: caps.policy.name(),
            })
        };
        if l.max_compute_workgroup_storage_size < WORKGROUP_BYTES {
            return Err(over(
                "max_compute_workgroup_storage_size",
                WORKGROUP_BYTES,
                l.max_compute_workgroup_storage_size,
            ));
        }
        if l.max_compute_invocations_per_workgroup < 128 || l.max_compute_workgroup_size_x < 128 {
            return Err(over("max_compute_invocations_per_workgroup", 128, l.max_compute_invocations_per_workgroup));
        }
        Ok(())
    }

    /// Whether the kernel computes `spec` (else it stays on [`crate::matmul::Matmul`]).
    pub fn spec_supported(spec: &Projection) -> Result<()> {
        spec.validate(KERNEL.name)?;
        let shape = |what, found: u64, why| Err(KernelError::Shape { kernel: KERNEL.name, what, found, why });
        for s in &spec.segments {
            if s.k % 32 != 0 {
                return shape("segment row length K", s.k as u64, "must be a multiple of 32");
            }
            if s.x_offset % 4 != 0 {
                return shape("segment input offset", s.x_offset as u64, "must be a multiple of 4");
            }
        }
        Ok(())
    }

    pub fn new(gpu: &Gpu, spec: &Projection, precision: CoopPrecision) -> Result<Self> {
        Self::spec_supported(spec)?;
        Self::device_supports(gpu)?;
        let max_dim = gpu.caps().limits.max_compute_workgroups_per_dimension;
        let parts = spec
            .parts()
            .into_iter()
            .map(|part| {
                // Row tiles per segment as bound (the block's rows when split).
                let seg_rows: Vec<u32> = if spec.row_blocks.is_empty() {
                    spec.segments.iter().map(|s| s.rows).collect()
                } else {
                    vec![part.rows]
                };
                let mut o = spec.overrides(part, true);
                o.push(("SPLIT", (precision == CoopPrecision::Split) as u32 as f64));
                let mut end = 0;
                for (i, name) in ["SEG_TILE_END0", "SEG_TILE_END1", "SEG_TILE_END2", "SEG_TILE_END3"].iter().enumerate()
                {
                    end += seg_rows.get(i).map_or(0, |r| r.div_ceil(TILE_M));
                    o.push((name, end as f64));
                }
                debug_assert!(seg_rows.len() <= MAX_SEGMENTS);
                if end > max_dim {
                    return Err(KernelError::Shape {
                        kernel: KERNEL.name,
                        what: "row tiles of one weight binding",
                        found: end as u64,
                        why: "exceed max_compute_workgroups_per_dimension: split the weight into row blocks",
                    });
                }
                // Every global index is guarded in the shader (tokens < T, rows < the segment's
                // rows, K slices inside K) against buffers whose sizes `record` checks; workgroup
                // indices are bounded by the constant tile geometry; loops end at K.
                let pipeline = gpu.pipeline(&KERNEL, &o)?;
                Ok((part, pipeline, end))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MatmulCoop { spec: spec.clone(), precision, parts, counts: TokenCounts::default() })
    }

    pub fn spec(&self) -> &Projection {
        &self.spec
    }

    pub fn precision(&self) -> CoopPrecision {
        self.precision
    }

    /// Records `Y = act(X·Wᵀ + bias)` (or `Y +=` it) for `t` tokens: one dispatch per weight
    /// binding. `weight` holds one range per row block (one range when the weight is not
    /// split); `bias` is required when a segment has a bias. Same contract as
    /// [`crate::matmul::Matmul::record`].
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        t: u32,
        x: BufferRange<'_>,
        weight: &[BufferRange<'_>],
        bias: Option<BufferRange<'_>>,
        y: BufferRange<'_>,
    ) -> Result<()> {
        let name = KERNEL.name;
        let spec = &self.spec;
        let max_dim = gpu.caps().limits.max_compute_workgroups_per_dimension;
        let token_tiles = t.div_ceil(TILE_T);
        if t == 0 || token_tiles > max_dim {
            return Err(KernelError::Shape {
                kernel: name,
                what: "token count T",
                found: t as u64,
                why: "must be positive and at most 128 x max_compute_workgroups_per_dimension",
            });
        }
        let bias = spec.check_bindings(name, t, weight.len(), x, bias, y)?;
        let params = self.counts.get(gpu, t)?;
        for ((part, pipeline, row_tiles), w) in self.parts.iter().zip(weight) {
            crate::check_len(name, "w", w.size, spec.part_weight_bytes(*part))?;
            let groups = gpu.bind_groups(pipeline, &[&[x, *w, bias, y, params.all(), *w]])?;
            rec.dispatch_reading(pipeline, &groups, [*row_tiles, token_tiles, 1], spec.part_read_bytes(*part, t));
        }
        Ok(())
    }
}
