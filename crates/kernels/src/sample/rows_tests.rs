//! Sampling several rows (independent sequences) in one dispatch: each row follows the
//! single-row reference with its own settings, seed and logits, and is bitwise what a run of
//! that row alone computes; a row is reset for a new sequence by writes to its shares only.

use std::cell::RefCell;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::tests::{banned_for, params_strategy, Follower, Session, Tally, PIPELINE_LIKE};
use super::*;
use crate::testing::{self, Tolerance};

/// Row `r`'s share of a [rows, width] readback.
fn share<T: Copy>(all: &[T], r: usize, width: usize) -> Vec<T> {
    all[r * width..(r + 1) * width].to_vec()
}

/// `rows` steps its rows on `logits` ([steps][rows, V]) while each of `singles` (one session
/// per row) steps on its row alone; every token, and at the end every row's counts, seen bits
/// and state, must be bitwise those of its single-row run.
fn check_rows_equal_singles(
    rows: &Session<'_>,
    singles: &[Session<'_>],
    logits: &[Vec<f32>],
) -> Result<(), TestCaseError> {
    let (gpu, v) = (rows.gpu, rows.v);
    for (step, l) in logits.iter().enumerate() {
        rows.step(step, l);
        for (r, single) in singles.iter().enumerate() {
            single.step(step, &share(l, r, v));
        }
    }
    let tokens = rows.history.read_u32(gpu);
    let (counts, seen, state) = (rows.counts.read(gpu), rows.seen_bits(), rows.state.read_u32(gpu));
    for (r, single) in singles.iter().enumerate() {
        let mine: Vec<u32> = tokens.iter().skip(r).step_by(rows.rows).copied().collect();
        prop_assert_eq!(mine, single.history.read_u32(gpu), "row {} tokens", r);
        testing::assert_bitwise(&format!("row {r} counts"), &share(&counts, r, v), &single.counts.read(gpu))?;
        prop_assert_eq!(share(&seen, r, v), single.seen_bits(), "row {} seen", r);
        prop_assert_eq!(share(&state, r, STATE_WORDS), single.state.read_u32(gpu), "row {} state", r);
    }
    Ok(())
}

/// R rows with their own settings (banned tokens included), seeds and logits: each row's tokens
/// follow the single-row reference (exactly, or among the candidates of a float tie), its
/// counts, seen bits and step counter end as the reference's, and everything equals R runs of
/// one row each.
#[test]
fn rows_follow_the_reference_and_equal_single_row_runs() {
    let gpu = testing::gpu();
    let mut runner = TestRunner::new(testing::config());
    let tally = RefCell::new(Tally::default());
    let row_settings = (params_strategy(), any::<u64>(), proptest::collection::vec(any::<u32>(), 0..=4));
    let cases = (
        prop_oneof![Just(1usize), Just(2), Just(3), Just(7)],
        prop_oneof![Just(5usize), Just(33), Just(300), Just(1000)],
        1usize..4,
        0.5f32..5.0,
        any::<u64>(),
        proptest::collection::vec(row_settings, 7),
    );
    runner
        .run(&cases, |(rows, v, steps, scale, seed, settings)| {
            let settings = &settings[..rows];
            let params: Vec<SampleParams> =
                settings.iter().map(|(p, _, banned)| p.with_banned(&banned_for(banned, v)).unwrap()).collect();
            let seeds: Vec<u64> = settings.iter().map(|s| s.1).collect();
            let mut rng = testing::Rng::new(seed);
            let logits: Vec<Vec<f32>> = (0..steps).map(|_| rng.vec(rows * v, scale)).collect();
            let all = Session::rows(gpu, v, steps, &params, &seeds);
            let singles: Vec<Session<'_>> =
                (0..rows).map(|r| Session::new(gpu, v, steps, &params[r], seeds[r])).collect();
            check_rows_equal_singles(&all, &singles, &logits)?;
            let tokens = all.history.read_u32(gpu);
            let (counts, seen, state) = (all.counts.read(gpu), all.seen_bits(), all.state.read_u32(gpu));
            for r in 0..rows {
                let mut follower = Follower::new(v, params[r], seeds[r]);
                for (step, l) in logits.iter().enumerate() {
                    follower.compare(step, &share(l, r, v), tokens[step * rows + r])?;
                }
                testing::assert_close(
                    &format!("row {r} counts"),
                    &share(&counts, r, v),
                    &follower.counts,
                    Tolerance::F32_EXACTISH,
                )?;
                prop_assert_eq!(share(&seen, r, v), follower.seen.clone(), "row {} seen", r);
                prop_assert_eq!(state[r * STATE_WORDS + 2], steps as u32, "row {} step counter", r);
                tally.borrow_mut().add(follower.tally);
            }
            Ok(())
        })
        .unwrap();
    let t = tally.into_inner();
    assert!(t.steps > 0);
    // The bound of the single-row test (see MAX_TIE_FRACTION there).
    assert!(t.ties * 20 <= t.steps, "{} of {} steps were ties", t.ties, t.steps);
}

/// Row 1 of three is reset for a new sequence (new seed and settings) between steps, by writes
/// to its shares of `counts`, `seen`, `state` and `params` only: it then runs as a fresh
/// single-row session, and the other rows go on as if nothing happened.
#[test]
fn a_reset_row_starts_a_fresh_sequence() {
    let gpu = testing::gpu();
    let v = 300;
    let params = [PIPELINE_LIKE, SampleParams { temperature: 0.7, top_k: 5, ..PIPELINE_LIKE }, SampleParams::PLAIN];
    let seeds = [1u64, 2, 3];
    let fresh = (SampleParams { top_p: 0.5, presence_penalty: 0.5, ..PIPELINE_LIKE }.with_banned(&[7]).unwrap(), 99u64);
    let (before, after) = (3, 4);
    let mut rng = testing::Rng::new(5);
    let logits: Vec<Vec<f32>> = (0..before + after).map(|_| rng.vec(3 * v, 2.0)).collect();

    let all = Session::rows(gpu, v, before + after, &params, &seeds);
    let singles: Vec<Session<'_>> =
        (0..3).map(|r| Session::new(gpu, v, before + after, &params[r], seeds[r])).collect();
    let restarted = Session::new(gpu, v, after, &fresh.0, fresh.1);
    for (step, l) in logits.iter().enumerate() {
        if step == before {
            let per = all.k.row_bytes();
            gpu.write(&all.counts.buffer, per.counts, &vec![0u8; per.counts as usize]);
            gpu.write(&all.seen.buffer, per.seen, &vec![0u8; per.seen as usize]);
            gpu.write(&all.state.buffer, per.state, bytemuck::cast_slice(&initial_state(fresh.1)));
            gpu.write(&all.params, per.params, fresh.0.as_bytes());
        }
        all.step(step, l);
        for (r, single) in singles.iter().enumerate() {
            if r != 1 || step < before {
                single.step(step, &share(l, r, v));
            }
        }
        if step >= before {
            restarted.step(step - before, &share(l, 1, v));
        }
    }
    let tokens = all.history.read_u32(gpu);
    let row_tokens = |r: usize| -> Vec<u32> { tokens.iter().skip(r).step_by(3).copied().collect() };
    for r in [0, 2] {
        assert_eq!(row_tokens(r), singles[r].history.read_u32(gpu), "row {r}");
    }
    let single_1 = singles[1].history.read_u32(gpu);
    assert_eq!(row_tokens(1)[..before], single_1[..before], "row 1 before the reset");
    assert_eq!(row_tokens(1)[before..], restarted.history.read_u32(gpu), "row 1 after the reset");
    let (counts, seen, state) = (all.counts.read(gpu), all.seen_bits(), all.state.read_u32(gpu));
    let end = [&singles[0], &restarted, &singles[2]];
    for (r, s) in end.iter().enumerate() {
        testing::assert_bitwise(&format!("row {r} counts"), &share(&counts, r, v), &s.counts.read(gpu)).unwrap();
        assert_eq!(share(&seen, r, v), s.seen_bits(), "row {r} seen");
        assert_eq!(share(&state, r, STATE_WORDS), s.state.read_u32(gpu), "row {r} state");
    }
}
