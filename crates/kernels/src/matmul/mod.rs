//! Tiled matrix-matrix product for prefill: `Y[T, rows] = act(X[T, K]·Wᵀ + bias)`, optionally
//! added into `Y`, over up to four row segments of one packed weight in F32, F16 or Q8_0, with
//! the same segments, epilogues, layouts and row-block split as [`crate::matvec`] (see
//! [`crate::projection`]; for T tokens every input and output block is `[T, ·]`).
//!
//! Bindings (group 0):
//! - 0 `x`, read, `array<vec4<f32>>`: the input; the binding must cover the input elements
//!   rounded up to a multiple of 4.
//! - 1 `w`, read, `array<vec4<u32>>`: the GPU layout of the weight (or of one row block).
//! - 2 `bias`, read, `[rows]` f32; when no segment has a bias the launcher binds `x` here.
//! - 3 `y`, read_write, `[T, rows]` f32 (segment-major blocks, see [`crate::projection`]).
//! - 4 `params`, uniform, `vec4<u32>` whose x is T: owned by the launcher (one small buffer per
//!   distinct T), so T never comes from a buffer length.
//!
//! A workgroup of 256 threads computes 64 tokens x 64 weight rows of one segment: K slices of
//! 16 of X and W (dequantised to f32) are staged in workgroup memory (8.5 KiB) and each thread
//! accumulates 4 x 4 outputs in registers.

pub mod reference;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gpu_core::{Binding, BufferRange, Gpu, GpuBuffer, KernelSource, Needs, Pipeline, Recorder};

use crate::projection::{Part, Projection, MAX_SEGMENTS};
use crate::{KernelError, Result};

pub const KERNEL: KernelSource = KernelSource {
    name: "matmul",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/matmul.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "x"),
        Binding::read(0, 1, "w"),
        Binding::read(0, 2, "bias"),
        Binding::read_write(0, 3, "y"),
        Binding::uniform(0, 4, "params"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// Tokens per tile (BT in matmul.wgsl).
const TILE_T: u32 = 64;
/// Weight rows per tile (BM in matmul.wgsl).
const TILE_M: u32 = 64;

/// A projection for T tokens, with its pipelines (one per weight binding).
pub struct Matmul {
    spec: Projection,
    /// Each weight binding with its pipeline and its number of row tiles.
    parts: Vec<(Part, Arc<Pipeline>, u32)>,
    /// One uniform buffer holding T per distinct T recorded.
    t_params: Mutex<HashMap<u32, GpuBuffer>>,
}

impl Matmul {
    pub fn new(gpu: &Gpu, spec: &Projection) -> Result<Self> {
        spec.validate("matmul")?;
        let vec = spec.aligned(4);
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
                let mut o = spec.overrides(part, vec);
                let mut end = 0;
                for (i, name) in ["SEG_TILE_END0", "SEG_TILE_END1", "SEG_TILE_END2", "SEG_TILE_END3"].iter().enumerate()
                {
                    end += seg_rows.get(i).map_or(0, |r| r.div_ceil(TILE_M));
                    o.push((name, end as f64));
                }
                debug_assert!(seg_rows.len() <= MAX_SEGMENTS);
                if end > max_dim {
                    return Err(KernelError::Shape {
                        kernel: "matmul",
                        what: "row tiles of one weight binding",
                        found: end as u64,
                        why: "exceed max_compute_workgroups_per_dimension: split the weight into row blocks",
                    });
                }
                Ok((part, gpu.pipeline(&KERNEL, &o)?, end))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Matmul { spec: spec.clone(), parts, t_params: Mutex::new(HashMap::new()) })
    }

    pub fn spec(&self) -> &Projection {
        &self.spec
    }

    fn params(&self, gpu: &Gpu, t: u32) -> Result<GpuBuffer> {
        let mut map = self.t_params.lock().unwrap();
        if let Some(b) = map.get(&t) {
            return Ok(b.clone());
        }
        let b = gpu.uniform("matmul T", bytemuck::cast_slice(&[t, 0, 0, 0]))?;
        map.insert(t, b.clone());
        Ok(b)
    }

    /// Records `Y = act(X·Wᵀ + bias)` (or `Y +=` it) for `t` tokens: one dispatch per weight
    /// binding. `weight` holds one range per row block (one range when the weight is not
    /// split); `bias` is required when a segment has a bias.
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
        let spec = &self.spec;
        let max_dim = gpu.caps().limits.max_compute_workgroups_per_dimension;
        let token_tiles = t.div_ceil(TILE_T);
        if t == 0 || token_tiles > max_dim {
            return Err(KernelError::Shape {
                kernel: "matmul",
                what: "token count T",
                found: t as u64,
                why: "must be positive and at most 64 x max_compute_workgroups_per_dimension",
            });
        }
        if weight.len() != self.parts.len() {
            return Err(KernelError::Shape {
                kernel: "matmul",
                what: "weight bindings",
                found: weight.len() as u64,
                why: "must be one per row block of the projection",
            });
        }
        let elements = spec.x_len(t).max(spec.y_len(t));
        if elements >= 1 << 32 {
            return Err(KernelError::Shape {
                kernel: "matmul",
                what: "input or output elements",
                found: elements,
                why: "must be below 2^32 (u32 indexing)",
            });
        }
        crate::check_len("matmul", "x", x.size, spec.x_len(t).next_multiple_of(4) * 4)?;
        crate::check_len("matmul", "y", y.size, spec.y_len(t) * 4)?;
        let bias = match bias {
            Some(b) => {
                crate::check_len("matmul", "bias", b.size, spec.bias_len() * 4)?;
                b
            }
            None if spec.bias_len() > 0 => {
                return Err(KernelError::BufferTooSmall {
                    kernel: "matmul",
                    binding: "bias",
                    found: 0,
                    needed: spec.bias_len() * 4,
                })
            }
            None => x,
        };
        let params = self.params(gpu, t)?;
        for ((part, pipeline, row_tiles), w) in self.parts.iter().zip(weight) {
            crate::check_len("matmul", "w", w.size, spec.part_weight_bytes(*part))?;
            let groups = gpu.bind_groups(pipeline, &[&[x, *w, bias, y, params.all()]])?;
            rec.dispatch(pipeline, &groups, [*row_tiles, token_tiles, 1]);
        }
        Ok(())
    }
}
