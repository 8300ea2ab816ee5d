//! Token embedding: gathers row `tokens[t]` of the embedding table [V, C] (any weight format, in
//! the GPU layout of [`crate::formats`], decoded by `weights.wgsl`) and applies LayerNorm (ln0) to
//! it.
//!
//! Bindings (group 0): 0 `tokens` [T] u32 read, 1 `w` read (this part's rows: block bodies, F32
//! words or half pairs), 2 `weight` [C] read, 3 `bias` [C] read, 4 `x` [T, C] read_write, 6 `w_d`
//! read (formats with a `d` region: the part's block scales `d`; otherwise the part's rows
//! again). One workgroup per token.
//!
//! A table larger than one storage binding is split into row parts, one dispatch each (the
//! split is decided in [`Embedding::new`] from the device limits). A token id >= V yields a row
//! of NaN (the ids come from the GPU, so the launcher cannot reject them; NaN makes the error
//! visible downstream instead of silently embedding another token).

mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::formats::WeightFormat;
use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder, RowSplit};

pub use reference::embedding;

pub const KERNEL: KernelSource = KernelSource {
    name: "embedding",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/embedding.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "tokens"),
        Binding::read(0, 1, "w"),
        Binding::read(0, 2, "weight"),
        Binding::read(0, 3, "bias"),
        Binding::read_write(0, 4, "x"),
        Binding::read(0, 6, "w_d"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

struct Part {
    pipeline: Arc<Pipeline>,
    /// Byte ranges (offset, size) in the table of the part's rows and of its `d` halves.
    rows: (u64, u64),
    d: (u64, u64),
}

/// Embedding + ln0 for a `v` x `c` table.
pub struct Embedding {
    parts: Vec<Part>,
    /// Bytes of the packed table.
    table_bytes: u64,
    c: u32,
}

impl Embedding {
    pub fn new(gpu: &Gpu, format: WeightFormat, v: u32, c: u32, eps: f32) -> crate::Result<Self> {
        let max = gpu.caps().limits.max_storage_buffer_binding_size;
        Self::with_max_binding(gpu, format, v, c, eps, max)
    }

    /// As [`Embedding::new`], splitting the table into parts of at most `max_binding` bytes.
    pub fn with_max_binding(
        gpu: &Gpu,
        format: WeightFormat,
        v: u32,
        c: u32,
        eps: f32,
        max_binding: u64,
    ) -> crate::Result<Self> {
        crate::check_shape("embedding", "C", c, c > 0 && format.check_row_len(c as usize).is_ok())?;
        crate::check_shape("embedding", "V", v, v > 0)?;
        let (v64, c64) = (v as u64, c as u64);
        let align = gpu.caps().limits.min_storage_buffer_offset_alignment as u64;
        // Bytes of one row's block bodies, and of its blocks' `d` halves (formats with a `d` region).
        let blocks_per_row = c64 / format.block_elements() as u64;
        let row_bytes = blocks_per_row * format.body_bytes() as u64;
        let row_d_bytes = if format.has_d_region() { 2 * blocks_per_row } else { 0 };
        let split = RowSplit::new(v64, row_bytes, max_binding, align).ok_or(crate::KernelError::Shape {
            kernel: "embedding",
            what: "table row bytes",
            found: row_bytes,
            why: "a row part cannot fit one storage binding at an aligned offset",
        })?;
        let wg = crate::workgroup_size(gpu, 256);
        let body_bytes = v64 * row_bytes;
        let table_bytes = format.gpu_words(v as usize * c as usize) as u64 * 4;
        let mut parts = Vec::new();
        for &(first, rows) in &split.parts {
            let start = first * row_bytes;
            // Bound as whole vec4s where the table and the limit allow.
            let part_rows =
                (start, (rows * row_bytes).next_multiple_of(16).min(table_bytes - start).min(max_binding & !3));
            // The part's first `d` sits at half `first * blocks_per_row` of the `d` region; bind
            // from the aligned byte at or below it.
            let (d, half0) = if format.has_d_region() {
                let d_start = body_bytes + first * row_d_bytes;
                let bound = d_start - d_start % align;
                let end = (d_start + rows * row_d_bytes).next_multiple_of(4);
                ((bound, end - bound), (d_start - bound) / 2)
            } else {
                (part_rows, 0)
            };
            if d.1 > max_binding {
                return Err(crate::KernelError::Shape {
                    kernel: "embedding",
                    what: "block scale part bytes",
                    found: d.1,
                    why: "exceeds the binding size limit",
                });
            }
            let pipeline = gpu.pipeline(
                &KERNEL,
                &[
                    ("C", c as f64),
                    ("V", v as f64),
                    ("DTYPE", format.shader_id() as f64),
                    ("FIRST_ROW", first as f64),
                    ("PART_ROWS", rows as f64),
                    ("LAST_PART", if first + rows == v64 { 1.0 } else { 0.0 }),
                    ("D_HALF0", half0 as f64),
                    ("EPS", eps as f64),
                    ("WG", wg as f64),
                ],
            )?;
            parts.push(Part { pipeline, rows: part_rows, d });
        }
        Ok(Embedding { parts, table_bytes, c })
    }

    /// Number of row parts (dispatches per call).
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Embeds `rows` tokens of `tokens` into `x` [rows, C]. `table` is the whole table in the
    /// GPU layout of its format, at an offset aligned to `min_storage_buffer_offset_alignment`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        rows: u32,
        tokens: BufferRange<'_>,
        table: BufferRange<'_>,
        weight: BufferRange<'_>,
        bias: BufferRange<'_>,
        x: BufferRange<'_>,
    ) -> crate::Result<()> {
        crate::check_shape("embedding", "rows", rows, rows > 0)?;
        let row_bytes = self.c as u64 * 4;
        let x_bytes = rows as u64 * row_bytes;
        crate::check_len("embedding", "tokens", tokens.size, rows as u64 * 4)?;
        crate::check_len("embedding", "table", table.size, self.table_bytes)?;
        crate::check_len("embedding", "weight", weight.size, row_bytes)?;
        crate::check_len("embedding", "bias", bias.size, row_bytes)?;
        crate::check_len("embedding", "x", x.size, x_bytes)?;
        let align = gpu.caps().limits.min_storage_buffer_offset_alignment as u64;
        if !table.offset.is_multiple_of(align) {
            return Err(crate::KernelError::Shape {
                kernel: "embedding",
                what: "table offset",
                found: table.offset,
                why: "must be a multiple of min_storage_buffer_offset_alignment",
            });
        }
        let sub =
            |(offset, size): (u64, u64)| BufferRange { buffer: table.buffer, offset: table.offset + offset, size };
        let workgroups = workgroups_1d(rows, gpu.caps().limits.max_compute_workgroups_per_dimension);
        for part in &self.parts {
            let ranges = [
                crate::prefix(tokens, rows as u64 * 4),
                sub(part.rows),
                crate::prefix(weight, row_bytes),
                crate::prefix(bias, row_bytes),
                crate::prefix(x, x_bytes),
                sub(part.d),
            ];
            let groups = gpu.bind_groups(&part.pipeline, &[&ranges])?;
            rec.dispatch(&part.pipeline, &groups, workgroups);
        }
        Ok(())
    }
}
