//! Softmax over rows of V values in f32 (numerically stable: the row maximum is subtracted).
//!
//! Bindings (group 0): `x` [rows, V] read, `y` [rows, V] read_write. One workgroup per row.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub const KERNEL: KernelSource = KernelSource {
    name: "softmax",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/softmax.wgsl")),
    entry: "main",
    bindings: &[Binding::read(0, 0, "x"), Binding::read_write(0, 1, "y")],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// CPU reference: softmax of every row of `v` values, in f64.
pub fn softmax(x: &[f32], v: usize) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(v) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let s: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
        y.extend(row.iter().map(|&x| ((x as f64 - m).exp() / s) as f32));
    }
    y
}

/// Softmax of rows of `v` values.
pub struct Softmax {
    pipeline: Arc<Pipeline>,
    v: u32,
}

impl Softmax {
    pub fn new(gpu: &Gpu, v: u32) -> crate::Result<Self> {
        crate::check_shape("softmax", "V", v, v > 0)?;
        let wg = crate::workgroup_size(gpu, 1024);
        Ok(Softmax { pipeline: gpu.pipeline(&KERNEL, &[("V", v as f64), ("WG", wg as f64)])?, v })
    }

    /// Softmax of `rows` rows of `x` into `y`.
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        rows: u32,
        x: BufferRange<'_>,
        y: BufferRange<'_>,
    ) -> crate::Result<()> {
        crate::check_shape("softmax", "rows", rows, rows > 0)?;
        let bytes = rows as u64 * self.v as u64 * 4;
        crate::check_len("softmax", "x", x.size, bytes)?;
        crate::check_len("softmax", "y", y.size, bytes)?;
        let groups = gpu.bind_groups(&self.pipeline, &[&[crate::prefix(x, bytes), crate::prefix(y, bytes)]])?;
        rec.dispatch(
            &self.pipeline,
            &groups,
            workgroups_1d(rows, gpu.caps().limits.max_compute_workgroups_per_dimension),
        );
        Ok(())
    }
}
