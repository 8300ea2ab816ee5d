use proptest::prelude::*;

use super::*;
use crate::layer_norm::LayerNorm;
use crate::testing::{self, Tolerance};
use crate::token_shift::TokenShift;

const EPS: f32 = 1e-5;

struct Case {
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
    fn new(rows: usize, c: usize, nmix: usize, seed: u64) -> Self {
        let mut r = testing::Rng::new(seed);
        let offset = r.normal() * 10.0;
        let x = (0..rows * c).map(|_| r.normal() * 3.0 + offset).collect();
        let (w, b) = (r.vec(c, 1.0), r.vec(c, 0.5));
        let mu = (0..nmix * c).map(|_| r.uniform()).collect();
        let state = r.vec(c, 1.0);
        Case { rows, c, nmix, x, w, b, mu, state }
    }

    /// The fused kernel: `y` and the state after.
    fn fused(&self, gpu: &Gpu) -> (Vec<f32>, Vec<f32>) {
        let k = LnShift::new(gpu, self.c as u32, self.nmix as u32, EPS).unwrap();
        let [x, w, b, mu] = [&self.x, &self.w, &self.b, &self.mu].map(|v| testing::upload(gpu, v));
        let st = testing::Guarded::with_contents(gpu, &self.state);
        let y = testing::Guarded::new(gpu, self.rows * self.nmix * self.c);
        let mut rec = gpu.recorder();
        k.record(gpu, &mut rec, self.rows as u32, x.all(), w.all(), b.all(), mu.all(), st.range(), y.range()).unwrap();
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
        ts.record(gpu, &mut rec, rows, xa.all(), mu.all(), st.range(), y.range()).unwrap();
        rec.submit();
        (y.read(gpu), st.read(gpu))
    }

    fn reference(&self) -> (Vec<f32>, Vec<f32>) {
        let mut state = self.state.clone();
        let y = ln_shift(&self.x, &self.w, &self.b, EPS, &self.mu, &mut state);
        (y, state)
    }

    fn check(&self, gpu: &Gpu) -> Result<(), TestCaseError> {
        let (fy, fs) = self.fused(gpu);
        let (uy, us) = self.unfused(gpu);
        let (ry, rs) = self.reference();
        testing::assert_close("ln_shift y vs reference", &fy, &ry, Tolerance::F32_REDUCTION)?;
        testing::assert_close("ln_shift state vs reference", &fs, &rs, Tolerance::F32_REDUCTION)?;
        testing::assert_close("ln_shift y vs unfused", &fy, &uy, Tolerance::F32_REDUCTION)?;
        testing::assert_close("ln_shift state vs unfused", &fs, &us, Tolerance::F32_REDUCTION)
    }
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn fused_matches_unfused_and_reference(rows in 1usize..6, c in testing::widths(), six in any::<bool>(),
                                           seed in any::<u64>()) {
        Case::new(rows, c, if six { 6 } else { 1 }, seed).check(testing::gpu())?;
    }
}

#[test]
fn one_and_many_rows_both_mix_counts_under_default_limits() {
    for (rows, nmix) in [(1, 6), (1, 1), (4, 6), (4, 1)] {
        Case::new(rows, 2560, nmix, rows as u64 * 10 + nmix as u64).check(testing::gpu_default_limits()).unwrap();
    }
}

#[test]
fn state_carries_across_calls() {
    // Two calls of 3 rows equal one call of 6 rows.
    let gpu = testing::gpu();
    let whole = Case::new(6, 100, 6, 5);
    let (want_y, want_state) = whole.reference();
    let mut first = Case::new(3, 100, 6, 5);
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
