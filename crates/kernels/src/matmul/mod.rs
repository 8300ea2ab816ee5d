//! Tiled matrix-matrix product for prefill: `Y[T, rows] = act(X[T, K]·Wᵀ + bias)`, optionally
//! added into `Y`, over up to four row segments of one packed weight in any format, with
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
//! - 6 `w_d`, read, `array<u32>`: the same range as `w` (where the blocks' `d` are read; see
//!   weights.wgsl).
//!
//! A workgroup computes [`Tile::tokens`] tokens x 128 weight rows of one segment: K slices of 16
//! of X and W (dequantised to f32 while staged; the next slice's loads in flight during the
//! products) sit in workgroup memory (at most 16 KiB, WebGPU's default limit) and each thread
//! accumulates 8 rows x 4 or 8 tokens in registers. [`Matmul::record`] picks the tile from T
//! ([`Tile::for_tokens`]); [`Matmul::record_tile`] forces one (benchmarks).

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use gpu_core::{Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

use crate::projection::{Projection, MAX_SEGMENTS};
use crate::token_count::TokenCounts;
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
        Binding::read(0, 6, "w_d"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// The CPU tile ([`Tile::Lanes`]): entry `main_lanes` of the same shader, same bindings.
pub const KERNEL_LANES: KernelSource = KernelSource { name: "matmul_lanes", entry: "main_lanes", ..KERNEL };

/// Weight rows per tile (BM in matmul.wgsl).
const TILE_M: u32 = 128;

/// The token side of a workgroup's tile (override constants of matmul.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tile {
    /// 16 tokens, 64 threads of 8 rows x 4 tokens (short chunks; CPU adapters).
    T16,
    /// 64 tokens, 256 threads of 8 rows x 4 tokens.
    T64,
    /// 128 tokens, 256 threads of 8 rows x 8 tokens.
    T128,
    /// [`LANE_TOKENS`] tokens, 16 threads of 8 rows each, reading weights and inputs straight
    /// from their bindings (no workgroup memory): the tile for CPU adapters, whose SIMD lanes
    /// share each input load.
    Lanes,
}

/// Tokens per workgroup of [`Tile::Lanes`].
pub const LANE_TOKENS: u32 = 8;

impl Tile {
    pub const ALL: [Tile; 4] = [Tile::T16, Tile::T64, Tile::T128, Tile::Lanes];

    /// Tokens per tile.
    pub fn tokens(self) -> u32 {
        match self {
            Tile::T16 => 16,
            Tile::T64 => 64,
            Tile::T128 => 128,
            Tile::Lanes => LANE_TOKENS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tile::T16 => "t16",
            Tile::T64 => "t64",
            Tile::T128 => "t128",
            Tile::Lanes => "lanes",
        }
    }

    fn kernel(self) -> &'static KernelSource {
        match self {
            Tile::Lanes => &KERNEL_LANES,
            _ => &KERNEL,
        }
    }

    fn overrides(self) -> Vec<(&'static str, f64)> {
        let (threads_t, per_thread) = match self {
            Tile::T16 => (4.0, 4.0),
            Tile::T64 => (16.0, 4.0),
            Tile::T128 => (16.0, 8.0),
            Tile::Lanes => return vec![("LANE_TOKENS", LANE_TOKENS as f64)],
        };
        vec![("TOKEN_THREADS", threads_t), ("TOKENS_PER_THREAD", per_thread)]
    }

    /// The tile for `t` tokens against `row_tiles` tiles of 128 weight rows on a GPU (a CPU
    /// adapter always takes [`Tile::Lanes`]): the 16-token tile
    /// up to 16 tokens, the 128-token tile when it wastes little of its last tile and still
    /// gives a few hundred workgroups, else the 64-token tile.
    pub fn for_tokens(t: u32, row_tiles: u32) -> Tile {
        if t <= 16 {
            return Tile::T16;
        }
        let big = t.div_ceil(128);
        let waste = big * 128 - t;
        if t >= 256 && waste * 8 <= t && big * row_tiles >= 256 {
            Tile::T128
        } else {
            Tile::T64
        }
    }
}

/// One weight binding: its row tiles and override constants, and its pipeline per tile (built
/// when first recorded, so that only the tiles in use are compiled).
struct PartPipelines {
    row_tiles: u32,
    overrides: Vec<(&'static str, f64)>,
    pipelines: [OnceLock<Arc<Pipeline>>; Tile::ALL.len()],
}

/// A projection for T tokens, with its pipelines (per weight binding and tile).
pub struct Matmul {
    spec: Projection,
    parts: Vec<PartPipelines>,
    /// The uniform holding T, one per token count.
    counts: TokenCounts,
    /// Whether the adapter is a CPU ([`Tile::Lanes`] for every T).
    cpu: bool,
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
                Ok(PartPipelines { row_tiles: end, overrides: o, pipelines: Default::default() })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Matmul { spec: spec.clone(), parts, counts: TokenCounts::default(), cpu: gpu.caps().is_cpu() })
    }

    fn pipeline(&self, gpu: &Gpu, part: &PartPipelines, tile: Tile) -> Result<Arc<Pipeline>> {
        let slot = &part.pipelines[tile as usize];
        if let Some(p) = slot.get() {
            return Ok(p.clone());
        }
        let mut o = part.overrides.clone();
        o.extend(tile.overrides());
        let p = gpu.pipeline(tile.kernel(), &o)?;
        Ok(slot.get_or_init(|| p).clone())
    }

    /// The tile [`Matmul::record`] uses for `t` tokens.
    pub fn tile_for(&self, t: u32) -> Tile {
        if self.cpu {
            return Tile::Lanes;
        }
        let row_tiles = self.parts.iter().map(|p| p.row_tiles).max().unwrap_or(1);
        Tile::for_tokens(t, row_tiles)
    }

    pub fn spec(&self) -> &Projection {
        &self.spec
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
        self.record_tile(gpu, rec, self.tile_for(t), t, x, weight, bias, y)
    }

    /// [`Matmul::record`] with the given tile.
    #[allow(clippy::too_many_arguments)]
    pub fn record_tile(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        tile: Tile,
        t: u32,
        x: BufferRange<'_>,
        weight: &[BufferRange<'_>],
        bias: Option<BufferRange<'_>>,
        y: BufferRange<'_>,
    ) -> Result<()> {
        let spec = &self.spec;
        let max_dim = gpu.caps().limits.max_compute_workgroups_per_dimension;
        let token_tiles = t.div_ceil(tile.tokens());
        if t == 0 || token_tiles > max_dim {
            return Err(KernelError::Shape {
                kernel: "matmul",
                what: "token count T",
                found: t as u64,
                why: "must be positive and at most (tile tokens) x max_compute_workgroups_per_dimension",
            });
        }
        let bias = spec.check_bindings("matmul", t, weight.len(), x, bias, y)?;
        let params = self.counts.get(gpu, t)?;
        for ((part, p), w) in spec.parts().into_iter().zip(&self.parts).zip(weight) {
            crate::check_len("matmul", "w", w.size, spec.part_weight_bytes(part))?;
            let pipeline = self.pipeline(gpu, p, tile)?;
            let groups = gpu.bind_groups(&pipeline, &[&[x, *w, bias, y, params.all(), *w]])?;
            rec.dispatch_reading(&pipeline, &groups, [p.row_tiles, token_tiles, 1], spec.part_read_bytes(part, t));
        }
        Ok(())
    }
}
