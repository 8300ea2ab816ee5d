//! Matrix-vector product for one token (decode): `y = act(W·x + bias)`, optionally added into
//! `y`, over up to four row segments of one packed weight in any format (see
//! [`crate::projection`] for the segments and layouts). One dispatch computes r, k and v from the
//! token-shifted input, or the first stage of all four LoRAs; a weight bound as several row
//! blocks takes one dispatch per block.
//!
//! Bindings (group 0):
//! - 0 `x`, read, `array<vec4<f32>>`: the input; the binding must cover the input elements
//!   rounded up to a multiple of 4.
//! - 1 `w`, read, `array<vec4<u32>>`: the GPU layout of the weight (or of one row block),
//!   padded to 16 bytes ([`crate::formats`]).
//! - 2 `bias`, read, `[rows]` f32; when no segment has a bias the launcher binds `x` here.
//! - 3 `y`, read_write, `[rows]` f32.
//! - 6 `w_d`, read, `array<u32>`: the same range as `w` (where the block scales `d` are read; see
//!   weights.wgsl).
//!
//! A group of threads (a power of two) reduces R consecutive rows (1, 2 or 4, all in one
//! segment) reading consecutive vec4s, each input vec4 loaded once for the R rows and 2·R (R = 1:
//! four) weight loads in flight per thread; the group's sums meet through `subgroupShuffleXor`
//! (module `matvec_subgroup.wgsl`, where the device has subgroups) or workgroup memory (module
//! `matvec.wgsl`): one body, `matvec/matvec.wgsl`, with `reduce_subgroup.wgsl` or
//! `reduce.wgsl` (`shader_check::COMPOSED`).
//!
//! [`PrologueMatvec`] runs the same shaders' `main_prologue` entry: LayerNorm + token shift of
//! the raw residual folded into the input (two more bindings; see [`prologue`]).

pub mod prologue;
#[cfg(test)]
mod prologue_tests;
pub mod reference;
#[cfg(test)]
mod tests;

pub use prologue::{Prologue, PrologueMatvec};

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

use crate::formats::WeightFormat;
use crate::projection::{Part, Projection};
use crate::Result;

const BINDINGS: &[Binding] = &[
    Binding::read(0, 0, "x"),
    Binding::read(0, 1, "w"),
    Binding::read(0, 2, "bias"),
    Binding::read_write(0, 3, "y"),
    Binding::read(0, 6, "w_d"),
];

pub const KERNEL: KernelSource = KernelSource {
    name: "matvec",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/matvec.wgsl")),
    entry: "main",
    bindings: BINDINGS,
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

pub const KERNEL_SUBGROUP: KernelSource = KernelSource {
    name: "matvec_subgroup",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/matvec_subgroup.wgsl")),
    entry: "main",
    bindings: BINDINGS,
    needs: Needs { shader_f16: false, subgroups: true, cooperative_matrix: false },
};

/// The same shaders' `main_prologue` entry: LayerNorm + token shift folded into the input
/// ([`PrologueMatvec`]). Two more bindings: 4 `vecs`, 5 `shift`.
const PROLOGUE_BINDINGS: &[Binding] = &[
    Binding::read(0, 0, "x"),
    Binding::read(0, 1, "w"),
    Binding::read(0, 2, "bias"),
    Binding::read_write(0, 3, "y"),
    Binding::read(0, 4, "vecs"),
    Binding::read_write(0, 5, "shift"),
    Binding::read(0, 6, "w_d"),
];

pub const KERNEL_PROLOGUE: KernelSource = KernelSource {
    name: "matvec_prologue",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/matvec.wgsl")),
    entry: "main_prologue",
    bindings: PROLOGUE_BINDINGS,
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

pub const KERNEL_PROLOGUE_SUBGROUP: KernelSource = KernelSource {
    name: "matvec_prologue_subgroup",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/matvec_subgroup.wgsl")),
    entry: "main_prologue",
    bindings: PROLOGUE_BINDINGS,
    needs: Needs { shader_f16: false, subgroups: true, cooperative_matrix: false },
};

/// Threads per workgroup.
const WORKGROUP: u32 = 128;
/// Weights per chunk of a row (`weights_per_chunk` in matvec.wgsl): one vec4<u32> load of F16,
/// BF16 or Q8_0 words, one F32 vec4, or a chunk of 32 weights of the other block formats
/// (weight_chunks.wgsl).
fn weights_per_chunk(format: WeightFormat) -> u32 {
    match format {
        WeightFormat::F32 => 4,
        WeightFormat::F16 | WeightFormat::BF16 => 8,
        WeightFormat::Q8_0 => 16,
        _ => CHUNK_WEIGHTS,
    }
}

/// Weights per chunk of the block formats decoded by weight_chunks.wgsl (`CHUNK`).
const CHUNK_WEIGHTS: u32 = 32;

/// Whether `format` is decoded by weight_chunks.wgsl (`chunked()`): every block format but Q8_0.
pub(crate) fn is_chunked(format: WeightFormat) -> bool {
    format.block_elements() > 1 && format != WeightFormat::Q8_0
}

/// Threads per workgroup on a CPU adapter.
const CPU_WORKGROUP: u32 = 32;
/// Most threads reducing one row.
const MAX_THREADS_PER_ROW: u32 = 32;
/// Row groups a projection should have before rows are shared by a group (enough warps in
/// flight on a large GPU).
const MIN_ROW_GROUPS: u32 = 1024;
/// Shortest row (bytes of weights) worth sharing a group: shorter rows, and every Q8_0 row, run
/// faster one per group (H200, docs/perf.md: 2.9B Q8_0 288 -> 307 tok/s, 0.4B F16 699 -> 726;
/// 2.9B F16, 5 KiB rows, is best with rows shared).
const MIN_SHARED_ROW_BYTES: u32 = 4096;

/// A projection for one token, with its pipelines (one per weight binding).
pub struct Matvec {
    spec: Projection,
    parts: Vec<(Part, Arc<Pipeline>)>,
    geometry: Geometry,
}

/// How the kernels split the rows of a projection among threads (shared by both entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// The subgroup variant (where the device has subgroups).
    pub subgroup: bool,
    /// Whole-vec4 loads (the VEC override).
    pub vec: bool,
    /// Threads reducing one row group (a power of two, at most the smallest subgroup).
    pub threads_per_row: u32,
    /// Rows per row group (1, 2 or 4; divides every segment's and row block's rows).
    pub rows: u32,
    /// Threads per workgroup (a multiple of `threads_per_row`).
    pub workgroup: u32,
    /// The chunked formats' quant bytes to floats through the mantissa instead of conversions
    /// (`MAGIC_BYTES` in weight_chunks.wgsl; the same values either way). Off by default.
    pub magic_bytes: bool,
}

impl Geometry {
    /// The default split of `spec` on `gpu` for a workgroup of `workgroup` threads (entry
    /// `main`, whose input comes from its binding).
    pub fn of(gpu: &Gpu, spec: &Projection, workgroup: u32) -> Self {
        Self::choose(gpu, spec, workgroup, false)
    }

    /// The default split for the prologue entry (`main_prologue`, whose input is prepared in
    /// workgroup memory).
    pub fn of_prologue(gpu: &Gpu, spec: &Projection, workgroup: u32) -> Self {
        Self::choose(gpu, spec, workgroup, true)
    }

    fn choose(gpu: &Gpu, spec: &Projection, workgroup: u32, prologue: bool) -> Self {
        if gpu.caps().is_cpu() {
            return Self::for_cpu(gpu, spec);
        }
        let sg = gpu.caps().subgroups;
        let per_chunk = weights_per_chunk(spec.format);
        let vec = spec.aligned(per_chunk);
        let max_k = spec.segments.iter().map(|s| s.k).max().unwrap_or(1);
        let chunks = if vec { max_k / per_chunk } else { max_k };
        let cap = match sg {
            Some(sg) => prev_power_of_two(sg.min.max(1)).min(MAX_THREADS_PER_ROW),
            None => MAX_THREADS_PER_ROW,
        };
        // About four chunks per thread before adding threads.
        let threads_per_row = prev_power_of_two((chunks / 4).max(1)).min(cap);
        let total_rows: u32 = spec.segments.iter().map(|s| s.rows).sum();
        let min_k = spec.segments.iter().map(|s| s.k).min().unwrap_or(1);
        // Rows are shared in the element formats with long rows, and by two in the chunked
        // formats when the input comes from its binding: a chunk's 8 input vec4s are 128 bytes
        // apart from one thread to the next, so a 4-bit chunk reads 8 input bytes from the
        // cache per weight byte, and two rows halve that (an estimate from the layout, not
        // measured: issue 17; `decode_sweep` compares the splits). Q8_0 rows run one per group
        // (measured).
        let share = match spec.format {
            WeightFormat::F16 | WeightFormat::BF16 => min_k * 2 >= MIN_SHARED_ROW_BYTES,
            WeightFormat::F32 => min_k * 4 >= MIN_SHARED_ROW_BYTES,
            f => is_chunked(f) && !prologue,
        };
        let most = if is_chunked(spec.format) { 2 } else { 4 };
        let rows = [4, 2]
            .into_iter()
            .find(|&r| r <= most && share && Self::rows_fit(spec, r) && total_rows / r >= MIN_ROW_GROUPS)
            .unwrap_or(1);
        let workgroup = crate::workgroup_size(gpu, workgroup).max(threads_per_row);
        Geometry { subgroup: sg.is_some(), vec, threads_per_row, rows, workgroup, magic_bytes: false }
    }

    /// The split for a CPU adapter (a software driver such as lavapipe): one thread per row
    /// group and four rows per group where they fit, so each input load serves four rows and no
    /// lane waits on a reduction; small workgroups, so that even a narrow projection has a
    /// workgroup for every core. On lavapipe this halves the 0.1B shapes' matvec time against
    /// the GPU split (docs/perf.md, 2026-12-05).
    fn for_cpu(gpu: &Gpu, spec: &Projection) -> Self {
        let per_chunk = weights_per_chunk(spec.format);
        let rows = [4, 2].into_iter().find(|&r| Self::rows_fit(spec, r)).unwrap_or(1);
        let workgroup = crate::workgroup_size(gpu, CPU_WORKGROUP);
        Geometry {
            subgroup: gpu.caps().subgroups.is_some(),
            vec: spec.aligned(per_chunk),
            threads_per_row: 1,
            rows,
            workgroup,
            magic_bytes: false,
        }
    }

    /// Whether groups of `r` rows never straddle a segment or a row block.
    fn rows_fit(spec: &Projection, r: u32) -> bool {
        spec.segments.iter().all(|s| s.rows % r == 0) && spec.parts().iter().all(|p| p.rows % r == 0)
    }

    /// Checks a geometry for `spec` on `gpu`.
    pub fn validate(&self, gpu: &Gpu, spec: &Projection, kernel: &'static str) -> Result<()> {
        let tpr = self.threads_per_row;
        let sg_ok = match gpu.caps().subgroups {
            Some(sg) => !self.subgroup || tpr <= sg.min,
            None => !self.subgroup,
        };
        crate::check_shape(kernel, "threads per row", tpr, tpr.is_power_of_two() && tpr <= 64 && sg_ok)?;
        crate::check_shape(kernel, "rows per group", self.rows, matches!(self.rows, 1 | 2 | 4))?;
        crate::check_shape(kernel, "rows per group", self.rows, Self::rows_fit(spec, self.rows))?;
        let wg = self.workgroup;
        let max = gpu.caps().limits.max_compute_invocations_per_workgroup;
        crate::check_shape(kernel, "workgroup size", wg, wg.is_multiple_of(tpr) && wg <= max)?;
        let per_chunk = weights_per_chunk(spec.format);
        crate::check_shape(kernel, "vec4 loads", self.vec as u32, !self.vec || spec.aligned(per_chunk))
    }

    /// Rows one workgroup computes per row-group pass.
    pub fn rows_per_pass(&self) -> u32 {
        self.workgroup / self.threads_per_row * self.rows
    }

    fn overrides(&self) -> [(&'static str, f64); 4] {
        [
            ("WG", self.workgroup as f64),
            ("TPR", self.threads_per_row as f64),
            ("R", self.rows as f64),
            ("MAGIC_BYTES", self.magic_bytes as u32 as f64),
        ]
    }
}

fn prev_power_of_two(n: u32) -> u32 {
    if n == 0 {
        1
    } else {
        1 << (31 - n.leading_zeros())
    }
}

impl Matvec {
    /// Builds the pipelines of `spec`: the subgroup variant where the device has subgroups.
    pub fn new(gpu: &Gpu, spec: &Projection) -> Result<Self> {
        Self::with_geometry(gpu, spec, Geometry::of(gpu, spec, WORKGROUP))
    }

    /// Builds the pipelines of `spec` with an explicit split of the rows (for tuning).
    pub fn with_geometry(gpu: &Gpu, spec: &Projection, g: Geometry) -> Result<Self> {
        spec.validate("matvec")?;
        g.validate(gpu, spec, "matvec")?;
        let kernel = if g.subgroup { &KERNEL_SUBGROUP } else { &KERNEL };
        let parts = spec
            .parts()
            .into_iter()
            .map(|part| {
                let mut o = spec.overrides(part, g.vec);
                o.extend(g.overrides());
                Ok((part, gpu.pipeline(kernel, &o)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Matvec { spec: spec.clone(), parts, geometry: g })
    }

    pub fn spec(&self) -> &Projection {
        &self.spec
    }

    /// Whether the pipelines use the subgroup variant.
    pub fn uses_subgroups(&self) -> bool {
        self.parts[0].1.kernel.needs.subgroups
    }

    pub fn threads_per_row(&self) -> u32 {
        self.geometry.threads_per_row
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Records `y = act(W·x + bias)` (or `y +=` it): one dispatch per weight binding. `weight`
    /// holds one range per row block (one range when the weight is not split); `bias` is
    /// required when a segment has a bias.
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        x: BufferRange<'_>,
        weight: &[BufferRange<'_>],
        bias: Option<BufferRange<'_>>,
        y: BufferRange<'_>,
    ) -> Result<()> {
        let spec = &self.spec;
        let bias = spec.check_bindings("matvec", 1, weight.len(), x, bias, y)?;
        let rows_per_workgroup = self.geometry.rows_per_pass();
        let max_dim = gpu.caps().limits.max_compute_workgroups_per_dimension;
        for ((part, pipeline), w) in self.parts.iter().zip(weight) {
            crate::check_len("matvec", "w", w.size, spec.part_weight_bytes(*part))?;
            let groups = gpu.bind_groups(pipeline, &[&[x, *w, bias, y, *w]])?;
            let workgroups = workgroups_1d(part.rows.div_ceil(rows_per_workgroup), max_dim);
            rec.dispatch_reading(pipeline, &groups, workgroups, spec.part_read_bytes(*part, 1));
        }
        Ok(())
    }
}
