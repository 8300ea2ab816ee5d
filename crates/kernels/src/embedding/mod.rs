//! Token embedding: gathers row `tokens[t]` of the embedding table [V, C] (F32, F16 or Q8_0 in
//! the GPU layouts of `common.wgsl`) and applies LayerNorm (ln0) to it.
//!
//! Bindings (group 0): `tokens` [T] u32 read, `table` read (this part's rows: F32 words, F16
//! half pairs, or Q8_0 quants), `scales` read (Q8_0: the part's block scales; F32/F16: the
//! table range again, unused), `weight` [C] read, `bias` [C] read, `x` [T, C] read_write. One
//! workgroup per token.
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
        Binding::read(0, 1, "table"),
        Binding::read(0, 2, "scales"),
        Binding::read(0, 3, "weight"),
        Binding::read(0, 4, "bias"),
        Binding::read_write(0, 5, "x"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// Bytes of a packed `v` x `c` table (without the 16-byte padding of the packers).
fn table_bytes(format: WeightFormat, v: u64, c: u64) -> u64 {
    let n = v * c;
    match format {
        WeightFormat::F32 => n * 4,
        WeightFormat::F16 => n.div_ceil(2) * 4,
        WeightFormat::Q8_0 => (n / 4 + (n / 32).div_ceil(2)) * 4,
    }
}

struct Part {
    pipeline: Arc<Pipeline>,
    table: (u64, u64),
    scales: (u64, u64),
}

/// Embedding + ln0 for a `v` x `c` table.
pub struct Embedding {
    parts: Vec<Part>,
    format: WeightFormat,
    v: u32,
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
        crate::check_shape("embedding", "C", c, c > 0 && (format != WeightFormat::Q8_0 || c.is_multiple_of(32)))?;
        crate::check_shape("embedding", "V", v, v > 0)?;
        let (v64, c64) = (v as u64, c as u64);
        let align = gpu.caps().limits.min_storage_buffer_offset_alignment as u64;
        let row_bytes = match format {
            WeightFormat::F32 => 4 * c64,
            WeightFormat::F16 => 2 * c64,
            WeightFormat::Q8_0 => c64,
        };
        let split = RowSplit::new(v64, row_bytes, max_binding, align).ok_or(crate::KernelError::Shape {
            kernel: "embedding",
            what: "table row bytes",
            found: row_bytes,
            why: "a row part cannot fit one storage binding at an aligned offset",
        })?;
        let wg = crate::workgroup_size(gpu, 256);
        let quant_bytes = v64 * c64;
        let mut parts = Vec::new();
        for &(first, rows) in &split.parts {
            let table = (first * row_bytes, (rows * row_bytes).next_multiple_of(4));
            // Q8_0 scales: the part's first scale sits at half `first * c / 32` after the quants;
            // bind from the aligned byte at or below it.
            let (scales, half0) = if format == WeightFormat::Q8_0 {
                let start = quant_bytes + first * c64 / 32 * 2;
                let bound = start - start % align;
                let end = (start + rows * c64 / 32 * 2).next_multiple_of(4);
                ((bound, end - bound), (start - bound) / 2)
            } else {
                (table, 0)
            };
            if scales.1 > max_binding {
                return Err(crate::KernelError::Shape {
                    kernel: "embedding",
                    what: "Q8_0 scale part bytes",
                    found: scales.1,
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
                    ("SCALE_HALF0", half0 as f64),
                    ("EPS", eps as f64),
                    ("WG", wg as f64),
                ],
            )?;
            parts.push(Part { pipeline, table, scales });
        }
        Ok(Embedding { parts, format, v, c })
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
        crate::check_len("embedding", "table", table.size, table_bytes(self.format, self.v as u64, self.c as u64))?;
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
                sub(part.table),
                sub(part.scales),
                crate::prefix(weight, row_bytes),
                crate::prefix(bias, row_bytes),
                crate::prefix(x, x_bytes),
            ];
            let groups = gpu.bind_groups(&part.pipeline, &[&ranges])?;
            rec.dispatch(&part.pipeline, &groups, workgroups);
        }
        Ok(())
    }
}
