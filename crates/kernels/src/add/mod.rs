//! Residual add `y += x` over `n` f32 values.
//!
//! Bindings (group 0): `x` [n] read, `y` [n] read_write. One invocation per element.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub const KERNEL: KernelSource = KernelSource {
    name: "add",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/add.wgsl")),
    entry: "main",
    bindings: &[Binding::read(0, 0, "x"), Binding::read_write(0, 1, "y")],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// CPU reference: `y += x`.
pub fn add(x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += x);
}

pub struct Add {
    pipeline: Arc<Pipeline>,
    wg: u32,
}

impl Add {
    pub fn new(gpu: &Gpu) -> crate::Result<Self> {
        let wg = crate::workgroup_size(gpu, 256);
        Ok(Add { pipeline: gpu.pipeline(&KERNEL, &[("WG", wg as f64)])?, wg })
    }

    /// Adds the first `n` values of `x` to those of `y`.
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        n: u32,
        x: BufferRange<'_>,
        y: BufferRange<'_>,
    ) -> crate::Result<()> {
        crate::check_shape("add", "n", n, n > 0)?;
        let bytes = n as u64 * 4;
        crate::check_len("add", "x", x.size, bytes)?;
        crate::check_len("add", "y", y.size, bytes)?;
        let groups = gpu.bind_groups(&self.pipeline, &[&[crate::prefix(x, bytes), crate::prefix(y, bytes)]])?;
        let count = n.div_ceil(self.wg);
        rec.dispatch(
            &self.pipeline,
            &groups,
            workgroups_1d(count, gpu.caps().limits.max_compute_workgroups_per_dimension),
        );
        Ok(())
    }
}
