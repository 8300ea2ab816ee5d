use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

/// Runs the kernel; returns `y` and the state after the dispatch.
fn run(gpu: &Gpu, rows: usize, c: usize, nmix: usize, xa: &[f32], mu: &[f32], state: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let k = TokenShift::new(gpu, c as u32, nmix as u32).unwrap();
    let (bx, bm) = (testing::upload(gpu, xa), testing::upload(gpu, mu));
    let st = testing::Guarded::with_contents(gpu, state);
    let y = testing::Guarded::new(gpu, rows * nmix * c);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, rows as u32, bx.all(), bm.all(), st.range(), y.range()).unwrap();
    rec.submit();
    (y.read(gpu), st.read(gpu))
}

fn check(gpu: &Gpu, rows: usize, c: usize, nmix: usize, seed: u64) -> Result<(), TestCaseError> {
    let mut r = testing::Rng::new(seed);
    let xa = r.vec(rows * c, 2.0);
    let mu: Vec<f32> = (0..nmix * c).map(|_| r.uniform()).collect();
    let state = r.vec(c, 2.0);
    let (got_y, got_state) = run(gpu, rows, c, nmix, &xa, &mu, &state);
    let mut want_state = state.clone();
    let want_y = token_shift(&xa, &mu, &mut want_state, nmix);
    testing::assert_close("token_shift y", &got_y, &want_y, Tolerance::F32_EXACTISH)?;
    testing::assert_close("token_shift state", &got_state, &want_state, Tolerance::F32_EXACTISH)
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(rows in 1usize..6, c in testing::widths(), six in any::<bool>(), seed in any::<u64>()) {
        check(testing::gpu(), rows, c, if six { 6 } else { 1 }, seed)?;
    }
}

#[test]
fn model_size_under_default_limits() {
    check(testing::gpu_default_limits(), 3, 2560, 6, 1).unwrap();
    check(testing::gpu_default_limits(), 1, 2560, 1, 2).unwrap();
}

#[test]
fn rejects_bad_shapes() {
    let gpu = testing::gpu();
    assert!(TokenShift::new(gpu, 0, 6).is_err());
    let k = TokenShift::new(gpu, 8, 6).unwrap();
    let small = gpu.buffer("small", 4 * 8).unwrap();
    let mut rec = gpu.recorder();
    assert!(k.record(gpu, &mut rec, 2, small.all(), small.all(), small.all(), small.all()).is_err());
    assert!(k.record(gpu, &mut rec, 0, small.all(), small.all(), small.all(), small.all()).is_err());
}
