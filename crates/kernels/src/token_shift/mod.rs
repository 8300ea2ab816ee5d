//! Token shift: the RWKV-7 lerps between each row and the previous one (six mixes r,w,k,v,a,g
//! for the time mix, one for the channel mix), carrying the last row over in a state vector.
//!
//! Bindings (group 0): `xa` [T, C] read (already normalised rows), `mu` [NMIX, C] read,
//! `shift_state` read_write, `y` [NMIX, T, C] (mix-major: each lerp's rows are one contiguous
//! [T, C] block, as the projections read them) read_write with
//! `y[j][t] = xa[t] + (prev - xa[t]) * mu[j]`. One workgroup per row.
//!
//! `shift_state` depends on the [`RowMode`]: in [`RowMode::Sequence`] it is [C] (the previous
//! row on entry, row T - 1 on exit; only workgroup 0 touches it); in [`RowMode::Independent`]
//! it is [T, C] (row t: the previous token of row t's own sequence on entry, row t on exit;
//! workgroup t touches only row t).

mod reference;
#[cfg(test)]
mod tests;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Recorder};

use crate::row_mode::ModePipelines;
use crate::RowMode;
pub use reference::{token_shift, token_shift_in_mode};

pub const KERNEL: KernelSource = KernelSource {
    name: "token_shift",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/token_shift.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "xa"),
        Binding::read(0, 1, "mu"),
        Binding::read_write(0, 2, "shift_state"),
        Binding::read_write(0, 3, "y"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// The token shift of rows of `c` channels with `nmix` mixes.
pub struct TokenShift {
    pipelines: ModePipelines,
    c: u32,
    nmix: u32,
}

impl TokenShift {
    pub fn new(gpu: &Gpu, c: u32, nmix: u32) -> crate::Result<Self> {
        crate::check_shape("token_shift", "C", c, c > 0)?;
        crate::check_shape("token_shift", "NMIX", nmix, nmix > 0)?;
        let wg = crate::workgroup_size(gpu, 256);
        let overrides = [("C", c as f64), ("NMIX", nmix as f64), ("WG", wg as f64)];
        Ok(TokenShift { pipelines: ModePipelines::new(gpu, &KERNEL, &overrides)?, c, nmix })
    }

    /// Shifts `rows` rows of `xa` into `y`, the rows related as `mode` says, and leaves row
    /// `rows - 1` in `shift_state` (Sequence) or each row t in its state row t (Independent).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        mode: RowMode,
        rows: u32,
        xa: BufferRange<'_>,
        mu: BufferRange<'_>,
        shift_state: BufferRange<'_>,
        y: BufferRange<'_>,
    ) -> crate::Result<()> {
        crate::check_shape("token_shift", "rows", rows, rows > 0)?;
        let (c, nmix) = (self.c as u64, self.nmix as u64);
        let row_bytes = c * 4;
        let x_bytes = rows as u64 * row_bytes;
        let y_bytes = x_bytes * nmix;
        let state_bytes = mode.states(rows) as u64 * row_bytes;
        crate::check_len("token_shift", "xa", xa.size, x_bytes)?;
        crate::check_len("token_shift", "mu", mu.size, nmix * row_bytes)?;
        crate::check_len("token_shift", "shift_state", shift_state.size, state_bytes)?;
        crate::check_len("token_shift", "y", y.size, y_bytes)?;
        let ranges = [
            crate::prefix(xa, x_bytes),
            crate::prefix(mu, nmix * row_bytes),
            crate::prefix(shift_state, state_bytes),
            crate::prefix(y, y_bytes),
        ];
        let pipeline = self.pipelines.get(mode);
        let groups = gpu.bind_groups(pipeline, &[&ranges])?;
        rec.dispatch(pipeline, &groups, workgroups_1d(rows, gpu.caps().limits.max_compute_workgroups_per_dimension));
        Ok(())
    }
}
