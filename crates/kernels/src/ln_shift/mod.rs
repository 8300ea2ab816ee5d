//! LayerNorm fused with the token shift (ln1 + six lerps of the time mix, ln2 + one lerp of the
//! channel mix) in one dispatch.
//!
//! Bindings (group 0): `x` [T, C] read (raw residual), `weight` [C] read, `bias` [C] read,
//! `mu` [NMIX, C] read, `shift_state` read_write, `y` [NMIX, T, C] (mix-major: each lerp's rows
//! are one contiguous [T, C] block, as the projections read them) read_write. Six storage
//! buffers: fits WebGPU's default limit of eight. One workgroup per row.
//!
//! `shift_state` depends on the [`RowMode`]: in [`RowMode::Sequence`] it is [C] (the previous
//! token's LN output on entry, LN of row T - 1 on exit; only workgroup 0 touches it); in
//! [`RowMode::Independent`] it is [T, C] (row t: the LN output of the token before row t in
//! row t's own sequence on entry, LN of row t on exit; workgroup t touches only row t).

mod reference;
#[cfg(test)]
mod tests;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Recorder};

use crate::row_mode::ModePipelines;
use crate::RowMode;
pub use reference::{ln_shift, ln_shift_in_mode};

pub const KERNEL: KernelSource = KernelSource {
    name: "ln_shift",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/ln_shift.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "x"),
        Binding::read(0, 1, "weight"),
        Binding::read(0, 2, "bias"),
        Binding::read(0, 3, "mu"),
        Binding::read_write(0, 4, "shift_state"),
        Binding::read_write(0, 5, "y"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// LayerNorm (epsilon `eps`) plus token shift of rows of `c` channels with `nmix` mixes.
pub struct LnShift {
    pipelines: ModePipelines,
    c: u32,
    nmix: u32,
}

impl LnShift {
    pub fn new(gpu: &Gpu, c: u32, nmix: u32, eps: f32) -> crate::Result<Self> {
        crate::check_shape("ln_shift", "C", c, c > 0)?;
        crate::check_shape("ln_shift", "NMIX", nmix, nmix > 0)?;
        let wg = crate::workgroup_size(gpu, 256);
        let overrides = [("C", c as f64), ("NMIX", nmix as f64), ("EPS", eps as f64), ("WG", wg as f64)];
        Ok(LnShift { pipelines: ModePipelines::new(gpu, &KERNEL, &overrides)?, c, nmix })
    }

    /// Normalises and shifts `rows` rows of `x` into `y`, the rows related as `mode` says;
    /// leaves LN(x[rows - 1]) in `shift_state` (Sequence) or LN(x[t]) in its row t (Independent).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        mode: RowMode,
        rows: u32,
        x: BufferRange<'_>,
        weight: BufferRange<'_>,
        bias: BufferRange<'_>,
        mu: BufferRange<'_>,
        shift_state: BufferRange<'_>,
        y: BufferRange<'_>,
    ) -> crate::Result<()> {
        crate::check_shape("ln_shift", "rows", rows, rows > 0)?;
        let row_bytes = self.c as u64 * 4;
        let x_bytes = rows as u64 * row_bytes;
        let mu_bytes = self.nmix as u64 * row_bytes;
        let y_bytes = x_bytes * self.nmix as u64;
        let state_bytes = mode.states(rows) as u64 * row_bytes;
        crate::check_len("ln_shift", "x", x.size, x_bytes)?;
        crate::check_len("ln_shift", "weight", weight.size, row_bytes)?;
        crate::check_len("ln_shift", "bias", bias.size, row_bytes)?;
        crate::check_len("ln_shift", "mu", mu.size, mu_bytes)?;
        crate::check_len("ln_shift", "shift_state", shift_state.size, state_bytes)?;
        crate::check_len("ln_shift", "y", y.size, y_bytes)?;
        let ranges = [
            crate::prefix(x, x_bytes),
            crate::prefix(weight, row_bytes),
            crate::prefix(bias, row_bytes),
            crate::prefix(mu, mu_bytes),
            crate::prefix(shift_state, state_bytes),
            crate::prefix(y, y_bytes),
        ];
        let pipeline = self.pipelines.get(mode);
        let groups = gpu.bind_groups(pipeline, &[&ranges])?;
        rec.dispatch(pipeline, &groups, workgroups_1d(rows, gpu.caps().limits.max_compute_workgroups_per_dimension));
        Ok(())
    }
}
