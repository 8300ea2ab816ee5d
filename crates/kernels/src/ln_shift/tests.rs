use proptest::prelude::*;

use super::*;
use crate::layer_norm::LayerNorm;
use crate::testing::{self, Tolerance};
use crate::token_shift::TokenShift;

const EPS: f32 = 1e-5;

struct Case {
    mode: RowMode,
    rows: usize,
    c: usize,
    nmix: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    mu: Vec<f32>,
    state: Vec<f32>,
}

impl Case {
    /// Random inputs; the state holds one row per state of `mode`.
    fn new(mode: RowMode, rows: usize, c: usize, nmix: usize, seed: u64) -> Self {
        let mut r = testing::Rng::new(seed);
        let offset = r.normal() * 10.0;
        let x = (0..rows * c).map(|_| r.normal() * 3.0 + offset).collect();
        let (w, b) = (r.vec(c, 1.0), r.vec(c, 0.5));
        let mu = (0..nmix * c).map(|_| r.uniform()).collect();
        let state = r.vec(mode.states(rows as u32) as usize * c, 1.0);
        Case { mode, rows, c, nmix, x, w, b, mu, state }
    }

    /// The fused kernel: `y` and the state after.
    fn fused(&self, gpu: &Gpu) -> (Vec<f32>, Vec<f32>) {
        let k = LnShift::new(gpu, self.c as u32, self.nmix as u32, EPS).unwrap();
        let [x, w, b, mu] = [&self.x, &self.w, &self.b, &self.mu].map(|v| testing::upload(gpu, v));
        let st = testing::Guarded::with_contents(gpu, &self.state);
        let y = testing::Guarded::new(gpu, self.rows * self.nmix * self.c);
        let mut rec = gpu.recorder();
        k.record(
            gpu,
            &mut rec,
            self.mode,
            self.rows as u32,
            x.all(),
            w.all(),
            b.all(),
            mu.all(),
            st.range(),
            y.range(),
        )
        .unwrap();
        rec.submit();
        (y.read(gpu), st.read(gpu))
    }

    /// layer_norm then token_shift, two dispatches in one submission.
    fn unfused(&self, gpu: &Gpu) -> (Vec<f32>, Vec<f32>) {
        let ln = LayerNorm::new(gpu, self.c as u32, EPS).unwrap();
        let ts = TokenShift::new(gpu, self.c as u32, self.nmix as u32).unwrap();
        let [x, w, b, mu] = [&self.x, &self.w, &self.b, &self.mu].map(|v| testing::upload(gpu, v));
        let xa = gpu.buffer("xa", (self.rows * self.c * 4) as u64).unwrap();
        let st = testing::Guarded::with_contents(gpu, &self.state);
        let y = testing::Guarded::new(gpu, self.rows * self.nmix * self.c);
        let mut rec = gpu.recorder();
        let rows = self.rows as u32;
        ln.record(gpu, &mut rec, rows, x.all(), w.all(), b.all(), xa.all()).unwrap();
        ts.record(gpu, &mut rec, self.mode, rows, xa.all(), mu.all(), st.range(), y.range()).unwrap();
        rec.submit();
        (y.read(gpu), st.read(gpu))
    }

    fn reference(&self) -> (Vec<f32>, Vec<f32>) {
        let mut state = self.state.clone();
        let y = ln_shift_in_mode(self.mode, &self.x, &self.w, &self.b, EPS, &self.mu, &mut state);
        (y, state)
    }

    fn check(&self, gpu: &Gpu) -> Result<(), TestCaseError> {
        let (fy, fs) = self.fused(gpu);
        let (uy, us) = self.unfused(gpu);
        let (ry, rs) = self.reference();
        let m = self.mode;
        testing::assert_close(&format!("ln_shift y vs reference ({m:?})"), &fy, &ry, Tolerance::F32_REDUCTION)?;
        testing::assert_close(&format!("ln_shift state vs reference ({m:?})"), &fs, &rs, Tolerance::F32_REDUCTION)?;
        testing::assert_close(&format!("ln_shift y vs unfused ({m:?})"), &fy, &uy, Tolerance::F32_REDUCTION)?;
        testing::assert_close(&format!("ln_shift state vs unfused ({m:?})"), &fs, &us, Tolerance::F32_REDUCTION)
    }
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn fused_matches_unfused_and_reference(mode in testing::row_modes(), rows in prop_oneof![1usize..6, Just(7)],
                                           c in testing::widths(), six in any::<bool>(), seed in any::<u64>()) {
        Case::new(mode, rows, c, if six { 6 } else { 1 }, seed).check(testing::gpu())?;
    }
}

#[test]
fn odd_row_counts_in_both_modes() {
    for mode in RowMode::ALL {
        for rows in testing::ODD_ROWS {
            Case::new(mode, rows, 300, 6, rows as u64).check(testing::gpu()).unwrap();
        }
    }
}

#[test]
fn one_and_many_rows_both_mix_counts_under_default_limits() {
    for mode in RowMode::ALL {
        for (rows, nmix) in [(1, 6), (1, 1), (4, 6), (4, 1)] {
            let case = Case::new(mode, rows, 2560, nmix, rows as u64 * 10 + nmix as u64);
            case.check(testing::gpu_default_limits()).unwrap();
        }
    }
}

#[test]
fn independent_rows_equal_one_row_sequence_calls() {
    // Row t of an Independent call is bitwise what a Sequence call of that one row with state t
    // computes.
    let gpu = testing::gpu();
    let (rows, c, nmix) = (7, 300, 6);
    let all = Case::new(RowMode::Independent, rows, c, nmix, 3);
    let (y, states) = all.fused(gpu);
    for t in 0..rows {
        let row = t * c..(t + 1) * c;
        let one = Case {
            mode: RowMode::Sequence,
            rows: 1,
            x: all.x[row.clone()].to_vec(),
            state: all.state[row.clone()].to_vec(),
            w: all.w.clone(),
            b: all.b.clone(),
            mu: all.mu.clone(),
            ..all
        };
        let (yt, st) = one.fused(gpu);
        let y_row: Vec<f32> = (0..nmix).flat_map(|j| y[(j * rows + t) * c..(j * rows + t + 1) * c].to_vec()).collect();
        testing::assert_bitwise(&format!("row {t}: y"), &y_row, &yt).unwrap();
        testing::assert_bitwise(&format!("row {t}: state"), &states[row], &st).unwrap();
    }
}

#[test]
fn state_carries_across_calls() {
    // Two calls of 3 rows equal one call of 6 rows.
    let gpu = testing::gpu();
    let whole = Case::new(RowMode::Sequence, 6, 100, 6, 5);
    let (want_y, want_state) = whole.reference();
    let mut first = Case::new(RowMode::Sequence, 3, 100, 6, 5);
    first.x = whole.x[..300].to_vec();
    first.w = whole.w.clone();
    first.b = whole.b.clone();
    first.mu = whole.mu.clone();
    first.state = whole.state.clone();
    let (y1, s1) = first.fused(gpu);
    let mut second = Case { x: whole.x[300..].to_vec(), state: s1, ..first };
    second.rows = 3;
    let (y2, s2) = second.fused(gpu);
    // Mix-major output: each lerp's block of 3 rows from the first call, then from the second.
    let block = 3 * 100;
    let y: Vec<f32> = (0..6)
        .flat_map(|j| y1[j * block..(j + 1) * block].iter().chain(&y2[j * block..(j + 1) * block]))
        .copied()
        .collect();
    testing::assert_close("y", &y, &want_y, Tolerance::F32_REDUCTION).unwrap();
    testing::assert_close("state", &s2, &want_state, Tolerance::F32_REDUCTION).unwrap();
}
