//! How the rows of one call of a kernel that carries recurrent state (the token shift with or
//! without its LayerNorm, the time mix) relate to each other and to that state.

use std::sync::Arc;

use gpu_core::{Gpu, KernelSource, Pipeline};

/// The two meanings of the T rows a stateful kernel processes in one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RowMode {
    /// The rows are T consecutive tokens of one sequence (a prefill chunk, or one decode step):
    /// there is one state; row 0 reads it and the call leaves what row T - 1 produced in it.
    #[default]
    Sequence,
    /// Row t is one token of its own sequence t (a batched decode step): there are T states,
    /// one per row, and row t reads and writes state t only, exactly as a Sequence call of
    /// that one token with that state would.
    Independent,
}

impl RowMode {
    pub const ALL: [RowMode; 2] = [RowMode::Sequence, RowMode::Independent];

    /// How many states a call of `rows` rows reads and writes.
    pub fn states(self, rows: u32) -> u32 {
        match self {
            RowMode::Sequence => 1,
            RowMode::Independent => rows,
        }
    }

    /// The value of the shaders' `INDEPENDENT` override constant.
    fn independent_override(self) -> f64 {
        match self {
            RowMode::Sequence => 0.0,
            RowMode::Independent => 1.0,
        }
    }
}

/// One pipeline of a kernel per [`RowMode`] (its `INDEPENDENT` override), created together
/// when the launcher is created.
pub(crate) struct ModePipelines([Arc<Pipeline>; 2]);

impl ModePipelines {
    pub fn new(gpu: &Gpu, kernel: &KernelSource, overrides: &[(&'static str, f64)]) -> crate::Result<Self> {
        let one = |mode: RowMode| {
            let mut ov = overrides.to_vec();
            ov.push(("INDEPENDENT", mode.independent_override()));
            gpu.pipeline(kernel, &ov)
        };
        Ok(ModePipelines([one(RowMode::Sequence)?, one(RowMode::Independent)?]))
    }

    pub fn get(&self, mode: RowMode) -> &Arc<Pipeline> {
        &self.0[mode as usize]
    }
}

/// The CPU reference of a token-shift kernel in `mode`, from `one`, its reference for one
/// sequence (rows of `c` channels and their state in, mix-major `[NMIX, rows, C]` out).
/// Sequence: `one` on all the rows with the one state. Independent: `one` on each row alone,
/// a one-token sequence with state row t of `state` ([T, C]); the rows' outputs are gathered
/// into the mix-major `[NMIX, T, C]` layout.
pub(crate) fn shift_in_mode(
    mode: RowMode,
    c: usize,
    x: &[f32],
    state: &mut [f32],
    one: impl Fn(&[f32], &mut [f32]) -> Vec<f32>,
) -> Vec<f32> {
    match mode {
        RowMode::Sequence => one(x, state),
        RowMode::Independent => {
            let rows = x.len() / c;
            let mut y = Vec::new();
            for (t, (row, st)) in x.chunks(c).zip(state.chunks_mut(c)).enumerate() {
                let yt = one(row, st);
                if y.is_empty() {
                    y = vec![0.0; rows * yt.len()];
                }
                for (j, mix) in yt.chunks(c).enumerate() {
                    y[(j * rows + t) * c..(j * rows + t + 1) * c].copy_from_slice(mix);
                }
            }
            y
        }
    }
}
