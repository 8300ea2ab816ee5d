//! GroupNorm per head (the time mix's ln_x): each head of N channels of each row is normalised
//! on its own (epsilon 64e-5 in RWKV-7), then scaled and shifted per channel.
//!
//! Bindings (group 0): `x` [T, C] read, `weight` [C] read, `bias` [C] read, `y` [T, C]
//! read_write. One workgroup per (row, head).

mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub use reference::group_norm;

/// The GroupNorm epsilon of RWKV-7 (hard-coded in the official code and llama.cpp).
pub const RWKV7_GROUP_NORM_EPS: f32 = 64e-5;

pub const KERNEL: KernelSource = KernelSource {
    name: "group_norm",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/group_norm.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "x"),
        Binding::read(0, 1, "weight"),
        Binding::read(0, 2, "bias"),
        Binding::read_write(0, 3, "y"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// GroupNorm of rows of `c` channels in heads of `n`.
pub struct GroupNorm {
    pipeline: Arc<Pipeline>,
    c: u32,
    n: u32,
}

impl GroupNorm {
    pub fn new(gpu: &Gpu, c: u32, n: u32, eps: f32) -> crate::Result<Self> {
        crate::check_shape("group_norm", "N", n, n > 0)?;
        crate::check_shape("group_norm", "C", c, c > 0 && c.is_multiple_of(n))?;
        let wg = crate::workgroup_size(gpu, n.next_power_of_two().min(256));
        let pipeline =
            gpu.pipeline(&KERNEL, &[("C", c as f64), ("N", n as f64), ("EPS", eps as f64), ("WG", wg as f64)])?;
        Ok(GroupNorm { pipeline, c, n })
    }

    /// Normalises `rows` rows of `x` into `y`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        rows: u32,
        x: BufferRange<'_>,
        weight: BufferRange<'_>,
        bias: BufferRange<'_>,
        y: BufferRange<'_>,
    ) -> crate::Result<()> {
        crate::check_shape("group_norm", "rows", rows, rows > 0)?;
        let row_bytes = self.c as u64 * 4;
        let bytes = rows as u64 * row_bytes;
        crate::check_len("group_norm", "x", x.size, bytes)?;
        crate::check_len("group_norm", "weight", weight.size, row_bytes)?;
        crate::check_len("group_norm", "bias", bias.size, row_bytes)?;
        crate::check_len("group_norm", "y", y.size, bytes)?;
        let ranges = [
            crate::prefix(x, bytes),
            crate::prefix(weight, row_bytes),
            crate::prefix(bias, row_bytes),
            crate::prefix(y, bytes),
        ];
        let groups = gpu.bind_groups(&self.pipeline, &[&ranges])?;
        let count = rows * (self.c / self.n);
        rec.dispatch(
            &self.pipeline,
            &groups,
            workgroups_1d(count, gpu.caps().limits.max_compute_workgroups_per_dimension),
        );
        Ok(())
    }
}
