//! LayerNorm over rows (ln0, ln1, ln2, ln_out): `y = (x - mean) / sqrt(var + eps) * w + b`.
//!
//! Bindings (group 0): `x` [rows, C] read, `weight` [C] read, `bias` [C] read, `y` [rows, C]
//! write. One workgroup per row.

mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub use reference::layer_norm;

pub const KERNEL: KernelSource = KernelSource {
    name: "layer_norm",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/layer_norm.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "x"),
        Binding::read(0, 1, "weight"),
        Binding::read(0, 2, "bias"),
        Binding::read_write(0, 3, "y"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// A LayerNorm over rows of `c` values.
pub struct LayerNorm {
    pipeline: Arc<Pipeline>,
    c: u32,
}

impl LayerNorm {
    pub fn new(gpu: &Gpu, c: u32, eps: f32) -> crate::Result<Self> {
        crate::check_shape("layer_norm", "C", c, c > 0)?;
        let pipeline = gpu.pipeline(&KERNEL, &[("C", c as f64), ("EPS", eps as f64)])?;
        Ok(LayerNorm { pipeline, c })
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
        let need = rows as u64 * self.c as u64 * 4;
        crate::check_len("layer_norm", "x", x.size, need)?;
        crate::check_len("layer_norm", "y", y.size, need)?;
        crate::check_len("layer_norm", "weight", weight.size, self.c as u64 * 4)?;
        crate::check_len("layer_norm", "bias", bias.size, self.c as u64 * 4)?;
        let groups = gpu.bind_groups(&self.pipeline, &[&[x, weight, bias, y]])?;
        rec.dispatch(
            &self.pipeline,
            &groups,
            workgroups_1d(rows, gpu.caps().limits.max_compute_workgroups_per_dimension),
        );
        Ok(())
    }
}
