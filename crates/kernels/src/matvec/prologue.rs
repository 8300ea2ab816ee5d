//! A matvec whose input is prepared in its prologue, for one token: LayerNorm of the raw
//! residual x, then the token-shift lerp of each segment, `xa + (prev - xa) * mu_s` with
//! `xa = LN(x; ln_w, ln_b)`, `prev` the previous token's `xa` and `mu_s` the segment's mix row.
//! Every workgroup computes the LayerNorm statistics of x itself (x is C floats, in cache), so
//! no separate `ln_shift` dispatch is needed. Every segment reads C inputs (`k == C`); its input
//! block `x_offset / C` selects its mix row (r, k, v: blocks 0, 2, 3, as from `ln_shift`).
//!
//! Bindings (group 0), six storage buffers:
//! - 0 `x`, read, `[C]` f32 (bound as vec4s: the binding must cover C rounded up to 4): the raw
//!   residual.
//! - 1 `w`, read: the weight, as for [`super::Matvec`].
//! - 2 `bias`, read, `[rows]` f32; `x` is bound here when no segment has a bias.
//! - 3 `y`, read_write, `[rows]` f32.
//! - 4 `vecs`, read, `[rows, C]` f32: per-layer vectors; rows `ln_weight_row` and `ln_bias_row`
//!   hold the LayerNorm weight and bias, row `mix_row + b` the mix of input block b.
//! - 5 `shift`, read_write, `[2, C]` f32: the token-shift state in two halves. A dispatch of
//!   parity P reads `prev` from half P and, when it writes the state, workgroup 0 stores `xa`
//!   into half 1 - P (each invocation its own channels). The caller alternates P per token, so
//!   nothing reads what the same dispatch writes; of several matvecs sharing one input in one
//!   token, exactly one may write the state.

use std::sync::Arc;

use gpu_core::{workgroups_1d, BufferRange, Gpu, Pipeline, Recorder};

use super::{Geometry, KERNEL_PROLOGUE, KERNEL_PROLOGUE_SUBGROUP};
use crate::projection::{Part, Projection};
use crate::{KernelError, Result};

/// Threads per workgroup of the prologue entry (at most; fewer where the device allows fewer).
const WORKGROUP: u32 = 256;

/// Where the prologue finds its vectors and what it does with the shift state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prologue {
    /// Channels: the LayerNorm width and every segment's row length.
    pub c: u32,
    /// LayerNorm epsilon.
    pub eps: f32,
    /// Row of `vecs` holding the LayerNorm weight.
    pub ln_weight_row: u32,
    /// Row of `vecs` holding the LayerNorm bias.
    pub ln_bias_row: u32,
    /// Row of `vecs` holding the mix of input block 0 (segment s uses row
    /// `mix_row + x_offset / c`).
    pub mix_row: u32,
    /// Whether workgroup 0 writes `xa` into the shift state (half 1 - parity).
    pub write_shift: bool,
}

impl Prologue {
    /// A prologue that writes the shift state.
    pub fn new(c: u32, eps: f32, ln_weight_row: u32, ln_bias_row: u32, mix_row: u32) -> Self {
        Prologue { c, eps, ln_weight_row, ln_bias_row, mix_row, write_shift: true }
    }
    pub fn write_shift(self, write_shift: bool) -> Self {
        Prologue { write_shift, ..self }
    }

    /// Rows of `vecs` that `spec` reads.
    pub fn vecs_rows(&self, spec: &Projection) -> u32 {
        let blocks = spec.segments.iter().map(|s| s.x_offset / self.c.max(1) + 1).max().unwrap_or(1);
        (self.ln_weight_row + 1).max(self.ln_bias_row + 1).max(self.mix_row + blocks)
    }

    fn validate(&self, spec: &Projection) -> Result<()> {
        let shape = |what, found: u64, why| Err(KernelError::Shape { kernel: "matvec_prologue", what, found, why });
        if self.c == 0 {
            return shape("C", 0, "must be positive");
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return shape("LayerNorm epsilon (bits)", self.eps.to_bits() as u64, "must be finite and not negative");
        }
        for s in &spec.segments {
            if s.k != self.c {
                return shape("segment row length K", s.k as u64, "must equal C (the input is LN(x) over C)");
            }
            if s.x_offset % self.c != 0 {
                return shape("segment input offset", s.x_offset as u64, "must be a whole block of C");
            }
        }
        if self.vecs_rows(spec) as u64 * self.c as u64 >= 1 << 32 {
            return shape("vecs elements", self.vecs_rows(spec) as u64 * self.c as u64, "must be below 2^32");
        }
        Ok(())
    }
}

/// A projection for one token with the LayerNorm + token-shift prologue; pipelines for both
/// parities of every weight binding.
pub struct PrologueMatvec {
    spec: Projection,
    prologue: Prologue,
    /// Per weight binding: the pipelines of parity 0 and 1.
    parts: Vec<(Part, [Arc<Pipeline>; 2])>,
    geometry: Geometry,
}

impl PrologueMatvec {
    /// Builds the pipelines: the subgroup variant where the device has subgroups. Errors when a
    /// segment's row length is not C or its input not a whole block of C, or when the prepared
    /// input (C floats) does not fit the device's workgroup memory.
    pub fn new(gpu: &Gpu, spec: &Projection, prologue: Prologue) -> Result<Self> {
        Self::with_geometry(gpu, spec, prologue, Geometry::of_prologue(gpu, spec, WORKGROUP))
    }

    /// As [`Self::new`] with an explicit split of the rows (for tuning).
    pub fn with_geometry(gpu: &Gpu, spec: &Projection, prologue: Prologue, g: Geometry) -> Result<Self> {
        spec.validate("matvec_prologue")?;
        prologue.validate(spec)?;
        g.validate(gpu, spec, "matvec_prologue")?;
        let limits = &gpu.caps().limits;
        let wg = g.workgroup;
        let xs_len = prologue.c.div_ceil(4);
        // The IQ4 table of weight_chunks.wgsl: 16 floats.
        let shared = xs_len as u64 * 16 + wg as u64 * 4 + 64;
        if shared > limits.max_compute_workgroup_storage_size as u64 {
            return Err(KernelError::Shape {
                kernel: "matvec_prologue",
                what: "workgroup memory bytes (C rounded up to 4 floats, one float per thread, 16 more)",
                found: shared,
                why: "exceeds the device's max_compute_workgroup_storage_size",
            });
        }
        let kernel = if g.subgroup { &KERNEL_PROLOGUE_SUBGROUP } else { &KERNEL_PROLOGUE };
        let parts = spec
            .parts()
            .into_iter()
            .map(|part| {
                let pipeline = |parity: u32| {
                    let mut o = spec.overrides(part, g.vec);
                    o.extend(g.overrides());
                    o.extend([
                        ("PROLOGUE", 1.0),
                        ("C", prologue.c as f64),
                        ("EPS", prologue.eps as f64),
                        ("LN_W_ROW", prologue.ln_weight_row as f64),
                        ("LN_B_ROW", prologue.ln_bias_row as f64),
                        ("MIX_ROW", prologue.mix_row as f64),
                        ("PARITY", parity as f64),
                        // One writer per dispatch chain: the first weight binding's.
                        ("WRITE_SHIFT", (prologue.write_shift && part.base == 0) as u32 as f64),
                        ("XS_LEN", xs_len as f64),
                        ("PERMUTE_X", g.vec as u32 as f64),
                    ]);
                    gpu.pipeline(kernel, &o)
                };
                Ok((part, [pipeline(0)?, pipeline(1)?]))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PrologueMatvec { spec: spec.clone(), prologue, parts, geometry: g })
    }

    pub fn spec(&self) -> &Projection {
        &self.spec
    }

    /// Bytes a dispatch of `part` reads at least once: its weight binding, the raw residual, the
    /// LayerNorm weight and bias rows, one mix row per segment and the previous shift half (C
    /// floats each), and its bias and residual rows (the output and the written shift half are
    /// not counted).
    fn read_bytes(&self, part: Part) -> u64 {
        let segments = self.spec.segments.len() as u64;
        let vectors = 1 + 2 + segments + 1;
        self.spec.part_weight_bytes(part)
            + vectors * self.prologue.c as u64 * 4
            + self.spec.part_row_read_bytes(part, 1)
    }

    pub fn prologue(&self) -> &Prologue {
        &self.prologue
    }

    /// Whether the pipelines use the subgroup variant.
    pub fn uses_subgroups(&self) -> bool {
        self.parts[0].1[0].kernel.needs.subgroups
    }

    pub fn threads_per_row(&self) -> u32 {
        self.geometry.threads_per_row
    }

    /// Output rows each workgroup computes.
    pub fn rows_per_workgroup(&self) -> u32 {
        self.geometry.rows_per_pass()
    }

    /// How the rows are split among threads.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Records `y = act(W·mix(LN(x)) + bias)` (or `y +=` it) for one token with shift-state
    /// parity `parity` (0 or 1): one dispatch per weight binding. `weight` holds one range per
    /// row block; `bias` is required when a segment has a bias.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        parity: u32,
        x: BufferRange<'_>,
        vecs: BufferRange<'_>,
        shift: BufferRange<'_>,
        weight: &[BufferRange<'_>],
        bias: Option<BufferRange<'_>>,
        y: BufferRange<'_>,
    ) -> Result<()> {
        const K: &str = "matvec_prologue";
        let spec = &self.spec;
        let c = self.prologue.c as u64;
        crate::check_shape(K, "parity", parity, parity < 2)?;
        if weight.len() != self.parts.len() {
            return Err(KernelError::Shape {
                kernel: K,
                what: "weight bindings",
                found: weight.len() as u64,
                why: "must be one per row block of the projection",
            });
        }
        crate::check_len(K, "x", x.size, c.next_multiple_of(4) * 4)?;
        crate::check_len(K, "vecs", vecs.size, (self.prologue.vecs_rows(spec) as u64 * c).next_multiple_of(4) * 4)?;
        crate::check_len(K, "shift", shift.size, (2 * c).next_multiple_of(4) * 4)?;
        crate::check_len(K, "y", y.size, spec.y_len(1) * 4)?;
        let bias = match bias {
            Some(b) => {
                crate::check_len(K, "bias", b.size, spec.bias_len() * 4)?;
                b
            }
            None if spec.bias_len() > 0 => {
                return Err(KernelError::BufferTooSmall {
                    kernel: K,
                    binding: "bias",
                    found: 0,
                    needed: spec.bias_len() * 4,
                })
            }
            None => x,
        };
        let max_dim = gpu.caps().limits.max_compute_workgroups_per_dimension;
        for ((part, pipelines), w) in self.parts.iter().zip(weight) {
            crate::check_len(K, "w", w.size, spec.part_weight_bytes(*part))?;
            let pipeline = &pipelines[parity as usize];
            let groups = gpu.bind_groups(pipeline, &[&[x, *w, bias, y, vecs, shift, *w]])?;
            let workgroups = workgroups_1d(part.rows.div_ceil(self.rows_per_workgroup()), max_dim);
            rec.dispatch_reading(pipeline, &groups, workgroups, self.read_bytes(*part));
        }
        Ok(())
    }
}
