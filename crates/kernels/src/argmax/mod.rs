//! Argmax over rows of V values (greedy decoding): the index of the largest value, ties to the
//! lowest index; NaN never wins, and a row of only NaN yields `u32::MAX`.
//!
//! Bindings (group 0): `x` [rows, V] f32 read, `out` [rows] u32 read_write. One workgroup per
//! row (a single row for decode).

#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub const KERNEL: KernelSource = KernelSource {
    name: "argmax",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/argmax.wgsl")),
    entry: "main",
    bindings: &[Binding::read(0, 0, "x"), Binding::read_write(0, 1, "out")],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// CPU reference: the argmax of every row of `v` values (ties to the lowest index, NaN
/// skipped, `u32::MAX` for a row of only NaN).
pub fn argmax(x: &[f32], v: usize) -> Vec<u32> {
    x.chunks(v)
        .map(|row| {
            let mut best: Option<(f32, usize)> = None;
            for (i, &x) in row.iter().enumerate() {
                if !x.is_nan() && best.is_none_or(|(b, _)| x > b) {
                    best = Some((x, i));
                }
            }
            best.map_or(u32::MAX, |(_, i)| i as u32)
        })
        .collect()
}

/// Argmax of rows of `v` values.
pub struct Argmax {
    pipeline: Arc<Pipeline>,
    v: u32,
}

impl Argmax {
    pub fn new(gpu: &Gpu, v: u32) -> crate::Result<Self> {
        crate::check_shape("argmax", "V", v, v > 0)?;
        let wg = crate::workgroup_size(gpu, 1024);
        Ok(Argmax { pipeline: gpu.pipeline(&KERNEL, &[("V", v as f64), ("WG", wg as f64)])?, v })
    }

    /// Writes the argmax of each of `rows` rows of `x` to `out[row]`.
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        rows: u32,
        x: BufferRange<'_>,
        out: BufferRange<'_>,
    ) -> crate::Result<()> {
        crate::check_shape("argmax", "rows", rows, rows > 0)?;
        let x_bytes = rows as u64 * self.v as u64 * 4;
        crate::check_len("argmax", "x", x.size, x_bytes)?;
        crate::check_len("argmax", "out", out.size, rows as u64 * 4)?;
        let groups =
            gpu.bind_groups(&self.pipeline, &[&[crate::prefix(x, x_bytes), crate::prefix(out, rows as u64 * 4)]])?;
        rec.dispatch(
            &self.pipeline,
            &groups,
            workgroups_1d(rows, gpu.caps().limits.max_compute_workgroups_per_dimension),
        );
        Ok(())
    }
}
