use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

/// Runs the kernel in `mode`; returns `y` and the state after the dispatch.
#[allow(clippy::too_many_arguments)]
fn run(
    gpu: &Gpu,
    mode: RowMode,
    rows: usize,
    c: usize,
    nmix: usize,
    xa: &[f32],
    mu: &[f32],
    state: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let k = TokenShift::new(gpu, c as u32, nmix as u32).unwrap();
    let (bx, bm) = (testing::upload(gpu, xa), testing::upload(gpu, mu));
    let st = testing::Guarded::with_contents(gpu, state);
    let y = testing::Guarded::new(gpu, rows * nmix * c);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, mode, rows as u32, bx.all(), bm.all(), st.range(), y.range()).unwrap();
    rec.submit();
    (y.read(gpu), st.read(gpu))
}

/// One case in `mode` (state [C] or [rows, C]) against the reference in the same mode.
fn check(gpu: &Gpu, mode: RowMode, rows: usize, c: usize, nmix: usize, seed: u64) -> Result<(), TestCaseError> {
    let mut r = testing::Rng::new(seed);
    let xa = r.vec(rows * c, 2.0);
    let mu: Vec<f32> = (0..nmix * c).map(|_| r.uniform()).collect();
    let state = r.vec(mode.states(rows as u32) as usize * c, 2.0);
    let (got_y, got_state) = run(gpu, mode, rows, c, nmix, &xa, &mu, &state);
    let mut want_state = state.clone();
    let want_y = token_shift_in_mode(mode, &xa, &mu, &mut want_state, nmix);
    testing::assert_close(&format!("token_shift y ({mode:?})"), &got_y, &want_y, Tolerance::F32_EXACTISH)?;
    testing::assert_close(&format!("token_shift state ({mode:?})"), &got_state, &want_state, Tolerance::F32_EXACTISH)
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(mode in testing::row_modes(), rows in prop_oneof![1usize..6, Just(7), Just(33)],
                         c in testing::widths(), six in any::<bool>(), seed in any::<u64>()) {
        check(testing::gpu(), mode, rows, c, if six { 6 } else { 1 }, seed)?;
    }
}

#[test]
fn odd_row_counts_in_both_modes() {
    for mode in RowMode::ALL {
        for rows in testing::ODD_ROWS {
            check(testing::gpu(), mode, rows, 100, 6, rows as u64).unwrap();
        }
    }
}

#[test]
fn model_size_under_default_limits() {
    for mode in RowMode::ALL {
        check(testing::gpu_default_limits(), mode, 3, 2560, 6, 1).unwrap();
        check(testing::gpu_default_limits(), mode, 1, 2560, 1, 2).unwrap();
    }
}

#[test]
fn independent_rows_equal_one_row_sequence_calls() {
    // Row t of an Independent call is bitwise what a Sequence call of that one row with state t
    // computes.
    let gpu = testing::gpu();
    let (rows, c, nmix) = (7, 33, 6);
    let mut r = testing::Rng::new(11);
    let xa = r.vec(rows * c, 2.0);
    let mu: Vec<f32> = (0..nmix * c).map(|_| r.uniform()).collect();
    let states = r.vec(rows * c, 2.0);
    let (y, after) = run(gpu, RowMode::Independent, rows, c, nmix, &xa, &mu, &states);
    for t in 0..rows {
        let row = t * c..(t + 1) * c;
        let (yt, st) = run(gpu, RowMode::Sequence, 1, c, nmix, &xa[row.clone()], &mu, &states[row.clone()]);
        let y_row: Vec<f32> = (0..nmix).flat_map(|j| y[(j * rows + t) * c..(j * rows + t + 1) * c].to_vec()).collect();
        testing::assert_bitwise(&format!("row {t}: y"), &y_row, &yt).unwrap();
        testing::assert_bitwise(&format!("row {t}: state"), &after[row], &st).unwrap();
    }
}

#[test]
fn rejects_bad_shapes() {
    let gpu = testing::gpu();
    assert!(TokenShift::new(gpu, 0, 6).is_err());
    let k = TokenShift::new(gpu, 8, 6).unwrap();
    let small = gpu.buffer("small", 4 * 8).unwrap();
    let mut rec = gpu.recorder();
    let seq = RowMode::Sequence;
    assert!(k.record(gpu, &mut rec, seq, 2, small.all(), small.all(), small.all(), small.all()).is_err());
    assert!(k.record(gpu, &mut rec, seq, 0, small.all(), small.all(), small.all(), small.all()).is_err());
    // Two rows: a state of one row is enough in Sequence mode, too small in Independent mode.
    let (xa, mu, y) = (
        gpu.buffer("xa", 2 * 8 * 4).unwrap(),
        gpu.buffer("mu", 6 * 8 * 4).unwrap(),
        gpu.buffer("y", 12 * 8 * 4).unwrap(),
    );
    assert!(k.record(gpu, &mut rec, seq, 2, xa.all(), mu.all(), small.all(), y.all()).is_ok());
    let ind = RowMode::Independent;
    assert!(k.record(gpu, &mut rec, ind, 2, xa.all(), mu.all(), small.all(), y.all()).is_err());
    assert!(k.record(gpu, &mut rec, ind, 2, xa.all(), mu.all(), xa.all(), y.all()).is_ok());
}
