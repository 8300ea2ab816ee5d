//! Squared ReLU in place, `x = max(x, 0)^2` over `n` f32 values (the channel mix's activation).
//!
//! Bindings (group 0): `x` [n] read_write. One invocation per element.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub const KERNEL: KernelSource = KernelSource {
    name: "relu_sq",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/relu_sq.wgsl")),
    entry: "main",
    bindings: &[Binding::read_write(0, 0, "x")],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// CPU reference: `x = max(x, 0)^2`.
pub fn relu_sq(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0) * v.max(0.0));
}

pub struct ReluSq {
    pipeline: Arc<Pipeline>,
    wg: u32,
}

impl ReluSq {
    pub fn new(gpu: &Gpu) -> crate::Result<Self> {
        let wg = crate::workgroup_size(gpu, 256);
        Ok(ReluSq { pipeline: gpu.pipeline(&KERNEL, &[("WG", wg as f64)])?, wg })
    }

    /// Applies the activation to the first `n` values of `x`.
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder<'_>, n: u32, x: BufferRange<'_>) -> crate::Result<()> {
        crate::check_shape("relu_sq", "n", n, n > 0)?;
        crate::check_len("relu_sq", "x", x.size, n as u64 * 4)?;
        let groups = gpu.bind_groups(&self.pipeline, &[&[crate::prefix(x, n as u64 * 4)]])?;
        let count = n.div_ceil(self.wg);
        rec.dispatch(
            &self.pipeline,
            &groups,
            workgroups_1d(count, gpu.caps().limits.max_compute_workgroups_per_dimension),
        );
        Ok(())
    }
}
