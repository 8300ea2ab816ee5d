use gpu_core::GpuBuffer;
use proptest::prelude::*;

use super::reference::{self, wkv_step};
use super::*;
use crate::testing::{self, Guarded, Rng, Tolerance};

/// Inputs of one time-mix call with realistic magnitudes.
struct Case {
    mode: RowMode,
    shape: TimeMixShape,
    tokens: usize,
    rkv: Vec<f32>,
    lora: Vec<f32>,
    params: Vec<f32>,
    v_first: Vec<f32>,
    state: Vec<f32>,
}

fn uniform(r: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * r.uniform()
}

impl Case {
    /// Random inputs; `state` holds one [H, N, N] state per state of `mode`.
    fn new(mode: RowMode, heads: u32, tokens: usize, first_layer: bool, seed: u64) -> Case {
        let shape = TimeMixShape { heads, head_size: 64, first_layer };
        let c = shape.channels() as usize;
        let n = shape.head_size as usize;
        let mut r = Rng::new(seed);
        let rkv = r.vec(tokens * 3 * c, 1.0);
        let mut lora = Vec::with_capacity(tokens * 4 * c);
        for _ in 0..tokens {
            lora.extend((0..c).map(|_| uniform(&mut r, -3.0, 3.0))); // z
            lora.extend((0..2 * c).map(|_| uniform(&mut r, 0.0, 1.0))); // α, vgate
            lora.extend(r.vec(c, 1.0)); // g
        }
        let mut params = Vec::with_capacity(ParamRow::ALL.len() * c);
        for row in ParamRow::ALL {
            params.extend((0..c).map(|_| match row {
                ParamRow::KK => 1.0 + 0.2 * r.normal(),
                ParamRow::KA | ParamRow::LnxWeight => uniform(&mut r, 0.5, 1.5),
                ParamRow::RK => 0.5 * r.normal(),
                ParamRow::LnxBias => 0.1 * r.normal(),
                ParamRow::W0 | ParamRow::A0 | ParamRow::V0 => r.normal(),
            }));
        }
        let v_first = r.vec(tokens * c, 1.0);
        let state = r.vec(mode.states(tokens as u32) as usize * heads as usize * n * n, 1.0);
        Case { mode, shape, tokens, rkv, lora, params, v_first, state }
    }

    /// Reference results: (out, v_first, state).
    fn reference(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mut v_first, mut state) = (self.v_first.clone(), self.state.clone());
        let out = reference::time_mix_in_mode(
            self.mode,
            self.shape,
            &self.rkv,
            &self.lora,
            &self.params,
            &mut v_first,
            &mut state,
        );
        (out, v_first, state)
    }
}

/// GPU outputs of one run: (out, v_first, state).
type Outputs = (Vec<f32>, Vec<f32>, Vec<f32>);

/// The GPU layout of token-major test data `[T, Σ widths]`: segment-major, each kept segment's T
/// rows contiguous (as the projections write them). The reference stays token-major.
fn segment_major(data: &[f32], tokens: usize, widths: &[usize], keep: &[bool]) -> Vec<f32> {
    let row: usize = widths.iter().sum();
    assert_eq!(data.len(), tokens * row);
    let mut out = Vec::with_capacity(data.len());
    let mut start = 0;
    for (&w, &k) in widths.iter().zip(keep) {
        if k {
            for t in 0..tokens {
                out.extend_from_slice(&data[t * row + start..t * row + start + w]);
            }
        }
        start += w;
    }
    out
}

/// `rkv` and `lora` of tokens `t0..t0 + t` in the GPU layout.
fn gpu_inputs(case: &Case, t0: usize, t: usize) -> (Vec<f32>, Vec<f32>) {
    let c = case.shape.channels() as usize;
    let rkv = segment_major(&case.rkv[t0 * 3 * c..(t0 + t) * 3 * c], t, &[c; 3], &[true; 3]);
    // Layer 0 has no value-residual LoRA block.
    let keep = [true, true, !case.shape.first_layer, true];
    let lora = segment_major(&case.lora[t0 * 4 * c..(t0 + t) * 4 * c], t, &[c; 4], &keep);
    (rkv, lora)
}

fn run_core(gpu: &Gpu, case: &Case) -> Outputs {
    let tm = TimeMix::new(gpu, case.shape).unwrap();
    let (rkv, lora) = gpu_inputs(case, 0, case.tokens);
    let (rkv, lora, params) =
        (testing::upload(gpu, &rkv), testing::upload(gpu, &lora), testing::upload(gpu, &case.params));
    let v_first = Guarded::with_contents(gpu, &case.v_first);
    let state = Guarded::with_contents(gpu, &case.state);
    let out = Guarded::new(gpu, case.tokens * case.shape.channels() as usize);
    let mut rec = gpu.recorder();
    tm.record(
        gpu,
        &mut rec,
        case.mode,
        case.tokens as u32,
        rkv.all(),
        lora.all(),
        params.all(),
        v_first.range(),
        state.range(),
        out.range(),
    )
    .unwrap();
    rec.submit();
    (out.read(gpu), v_first.read(gpu), state.read(gpu))
}

fn assert_outputs(what: &str, got: &Outputs, want: &Outputs) -> Result<(), TestCaseError> {
    testing::assert_close(&format!("{what}: out"), &got.0, &want.0, Tolerance::TIME_MIX)?;
    testing::assert_close(&format!("{what}: v_first"), &got.1, &want.1, Tolerance::F32_EXACTISH)?;
    testing::assert_close(&format!("{what}: state"), &got.2, &want.2, Tolerance::TIME_MIX)
}

#[test]
fn reference_wkv_from_zero_state_is_the_outer_product() {
    // From S = 0: sa = 0, so S = v·kᵀ and y = v·(k·r) whatever w, a and b are.
    let n = 5;
    let mut r = Rng::new(3);
    let mut vecs = || r.vec(n, 1.0).into_iter().map(f64::from).collect::<Vec<f64>>();
    let (w, k, v, a, b, rr) = (vecs(), vecs(), vecs(), vecs(), vecs(), vecs());
    let mut s = vec![0.0; n * n];
    let y = wkv_step(&mut s, &w, &k, &v, &a, &b, &rr);
    let kr: f64 = k.iter().zip(&rr).map(|(k, r)| k * r).sum();
    for i in 0..n {
        assert!((y[i] - v[i] * kr).abs() < 1e-12);
        for j in 0..n {
            assert!((s[i * n + j] - v[i] * k[j]).abs() < 1e-12);
        }
    }
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn time_mix_matches_reference(
        mode in testing::row_modes(),
        heads in prop_oneof![Just(1u32), Just(2), Just(3)],
        tokens in prop_oneof![Just(1usize), Just(2), Just(3), Just(17)],
        first_layer in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let case = Case::new(mode, heads, tokens, first_layer, seed);
        assert_outputs(&format!("time_mix ({mode:?})"), &run_core(testing::gpu(), &case), &case.reference())?;
    }
}

#[test]
fn time_mix_odd_row_counts_in_both_modes() {
    for mode in RowMode::ALL {
        for tokens in testing::ODD_ROWS {
            for first_layer in [true, false] {
                let case = Case::new(mode, 3, tokens, first_layer, tokens as u64);
                let what = format!("time_mix {mode:?} T={tokens} first_layer={first_layer}");
                assert_outputs(&what, &run_core(testing::gpu(), &case), &case.reference()).unwrap();
            }
        }
    }
}

#[test]
fn time_mix_model_size_under_default_limits() {
    for mode in RowMode::ALL {
        for first_layer in [true, false] {
            let case = Case::new(mode, 40, 2, first_layer, 40);
            let what = format!("time_mix C=2560 ({mode:?})");
            assert_outputs(&what, &run_core(testing::gpu_default_limits(), &case), &case.reference()).unwrap();
        }
    }
}

#[test]
fn time_mix_independent_rows_equal_one_token_sequence_calls() {
    // Row t of an Independent call is bitwise what a Sequence call of that one token with
    // state t computes.
    let gpu = testing::gpu();
    for first_layer in [true, false] {
        let all = Case::new(RowMode::Independent, 2, 7, first_layer, 9);
        let (c, n) = (all.shape.channels() as usize, all.shape.head_size as usize);
        let per_state = c * n;
        let (out, v_first, state) = run_core(gpu, &all);
        for t in 0..all.tokens {
            let one = Case {
                mode: RowMode::Sequence,
                shape: all.shape,
                tokens: 1,
                rkv: all.rkv[t * 3 * c..(t + 1) * 3 * c].to_vec(),
                lora: all.lora[t * 4 * c..(t + 1) * 4 * c].to_vec(),
                params: all.params.clone(),
                v_first: all.v_first[t * c..(t + 1) * c].to_vec(),
                state: all.state[t * per_state..(t + 1) * per_state].to_vec(),
            };
            let got = run_core(gpu, &one);
            let what = format!("first_layer {first_layer} row {t}");
            testing::assert_bitwise(&format!("{what}: out"), &out[t * c..(t + 1) * c], &got.0).unwrap();
            testing::assert_bitwise(&format!("{what}: v_first"), &v_first[t * c..(t + 1) * c], &got.1).unwrap();
            let slot = &state[t * per_state..(t + 1) * per_state];
            testing::assert_bitwise(&format!("{what}: state"), slot, &got.2).unwrap();
        }
    }
}

/// The same tokens split into calls of `split` tokens each, all in one recording, carrying
/// the state.
fn run_core_split(gpu: &Gpu, case: &Case, split: &[usize]) -> Outputs {
    assert_eq!(split.iter().sum::<usize>(), case.tokens);
    let tm = TimeMix::new(gpu, case.shape).unwrap();
    let c = case.shape.channels() as usize;
    let params = testing::upload(gpu, &case.params);
    let parts: Vec<_> = split
        .iter()
        .scan(0, |t0, &t| {
            let (rkv, lora) = gpu_inputs(case, *t0, t);
            *t0 += t;
            Some((testing::upload(gpu, &rkv), testing::upload(gpu, &lora)))
        })
        .collect();
    let v_first = Guarded::with_contents(gpu, &case.v_first);
    let state = Guarded::with_contents(gpu, &case.state);
    let out = Guarded::new(gpu, case.tokens * c);
    let mut rec = gpu.recorder();
    let mut t0 = 0;
    for (&t, (rkv, lora)) in split.iter().zip(&parts) {
        let (c_off, c_size) = ((t0 * c * 4) as u64, (t * c * 4) as u64);
        tm.record(
            gpu,
            &mut rec,
            RowMode::Sequence,
            t as u32,
            rkv.all(),
            lora.all(),
            params.all(),
            v_first.buffer.range(c_off, c_size),
            state.range(),
            out.buffer.range(c_off, c_size),
        )
        .unwrap();
        t0 += t;
    }
    rec.submit();
    (out.read(gpu), v_first.read(gpu), state.read(gpu))
}

#[test]
fn one_call_equals_split_calls() {
    for first_layer in [true, false] {
        let case = Case::new(RowMode::Sequence, 2, 5, first_layer, 7);
        let whole = run_core(testing::gpu(), &case);
        for split in [&[1usize, 1, 1, 1, 1][..], &[2, 1, 2]] {
            let parts = run_core_split(testing::gpu(), &case, split);
            let what = format!("split {split:?} vs one call");
            testing::assert_close(&format!("{what}: out"), &parts.0, &whole.0, Tolerance::F32_EXACTISH).unwrap();
            testing::assert_close(&format!("{what}: v_first"), &parts.1, &whole.1, Tolerance::F32_EXACTISH).unwrap();
            testing::assert_close(&format!("{what}: state"), &parts.2, &whole.2, Tolerance::F32_EXACTISH).unwrap();
        }
    }
}

/// LoRA stage-1 outputs and stage-2 matrices for the fused variant.
struct LoraCase {
    ranks: LoraRanks,
    hidden: Vec<f32>,
    lora_b: Vec<f32>,
}

impl LoraCase {
    fn new(case: &Case, ranks: LoraRanks, seed: u64) -> LoraCase {
        let c = case.shape.channels() as usize;
        let mut r = Rng::new(seed);
        let mut hidden = Vec::new();
        for _ in 0..case.tokens {
            hidden.extend((0..ranks.w).map(|_| uniform(&mut r, -1.0, 1.0))); // tanh(w1·x)
            hidden.extend(r.vec(ranks.a as usize + ranks.v as usize, 0.5)); // a1·x, v1·x
            hidden.extend((0..ranks.g).map(|_| uniform(&mut r, 0.0, 1.0))); // σ(g1·x)
        }
        let mut lora_b = Vec::new();
        for d in [ranks.w, ranks.a, ranks.v, ranks.g] {
            lora_b.extend(r.vec(c * d as usize, 1.0 / (d.max(1) as f32).sqrt()));
        }
        LoraCase { ranks, hidden, lora_b }
    }

    /// The unfused case the fused kernel must match: `lora` from the reference stage 2.
    fn unfused(&self, case: &Case) -> Case {
        let c = case.shape.channels() as usize;
        let lora =
            reference::lora_stage2(c, self.ranks, case.shape.first_layer, &self.hidden, &self.lora_b, &case.params);
        Case {
            mode: RowMode::Sequence,
            shape: case.shape,
            tokens: case.tokens,
            rkv: case.rkv.clone(),
            lora,
            params: case.params.clone(),
            v_first: case.v_first.clone(),
            state: case.state.clone(),
        }
    }
}

fn run_fused(gpu: &Gpu, case: &Case, lc: &LoraCase) -> Outputs {
    let tm = TimeMixLora::new(gpu, case.shape, lc.ranks).unwrap();
    let up = |d: &[f32]| testing::upload(gpu, d);
    let (rkv, _) = gpu_inputs(case, 0, case.tokens);
    let r = lc.ranks;
    let hidden =
        segment_major(&lc.hidden, case.tokens, &[r.w as usize, r.a as usize, r.v as usize, r.g as usize], &[true; 4]);
    let lora_bt = transpose_lora_b(case.shape.channels() as usize, r, &lc.lora_b).unwrap();
    let (rkv, hidden, lora_bt, params) = (up(&rkv), up(&hidden), up(&lora_bt), up(&case.params));
    let v_first = Guarded::with_contents(gpu, &case.v_first);
    let state = Guarded::with_contents(gpu, &case.state);
    let out = Guarded::new(gpu, case.tokens * case.shape.channels() as usize);
    let mut rec = gpu.recorder();
    tm.record(
        gpu,
        &mut rec,
        case.tokens as u32,
        rkv.all(),
        hidden.all(),
        lora_bt.all(),
        params.all(),
        v_first.range(),
        state.range(),
        out.range(),
    )
    .unwrap();
    rec.submit();
    (out.read(gpu), v_first.read(gpu), state.read(gpu))
}

/// Rank sets (w, a, v, g) for the proptest. Each distinct set is a new pipeline, and a cold
/// lavapipe compile costs seconds, so there are few; the model-size test adds 96/96/64/320
/// (more stage-1 outputs than invocations).
fn ranks() -> impl Strategy<Value = LoraRanks> {
    prop_oneof![Just(LoraRanks { w: 4, a: 12, v: 8, g: 36 }), Just(LoraRanks { w: 32, a: 8, v: 12, g: 4 })]
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn time_mix_lora_matches_reference(
        tokens in prop_oneof![Just(1usize), Just(2), Just(17)],
        first_layer in any::<bool>(),
        ranks in ranks(),
        v_rank_zero in any::<bool>(),
        seed in any::<u64>(),
    ) {
        // H = 1 and 40 are covered by the core tests and the model-size test.
        let case = Case::new(RowMode::Sequence, 2, tokens, first_layer, seed);
        // Layer 0 may leave out the (unused) value-residual LoRA.
        let v = if first_layer && v_rank_zero { 0 } else { ranks.v };
        let lc = LoraCase::new(&case, LoraRanks { v, ..ranks }, seed ^ 1);
        let want = lc.unfused(&case).reference();
        assert_outputs("time_mix_lora", &run_fused(testing::gpu(), &case, &lc), &want)?;
    }
}

#[test]
fn time_mix_lora_model_size_under_default_limits() {
    // 2.9B: C = 2560, ranks 96/96/64/320.
    let ranks = LoraRanks { w: 96, a: 96, v: 64, g: 320 };
    for first_layer in [true, false] {
        let case = Case::new(RowMode::Sequence, 40, 1, first_layer, 29);
        let lc = LoraCase::new(&case, ranks, 30);
        let want = lc.unfused(&case).reference();
        assert_outputs("time_mix_lora C=2560", &run_fused(testing::gpu_default_limits(), &case, &lc), &want).unwrap();
    }
}

#[test]
fn bad_shapes_and_buffers_are_errors() {
    let gpu = testing::gpu();
    let shape = |heads, head_size| TimeMixShape { heads, head_size, first_layer: false };
    let ranks = LoraRanks { w: 32, a: 32, v: 32, g: 32 };
    for s in [shape(0, 64), shape(1, 6), shape(1, 0), shape(1, 128)] {
        assert!(TimeMix::new(gpu, s).is_err(), "{s:?}");
        assert!(TimeMixLora::new(gpu, s, ranks).is_err(), "{s:?}");
    }
    for r in [LoraRanks { w: 6, ..ranks }, LoraRanks { g: 0, ..ranks }, LoraRanks { v: 0, ..ranks }] {
        assert!(TimeMixLora::new(gpu, shape(1, 64), r).is_err(), "{r:?}");
    }
    let first = TimeMixShape { first_layer: true, ..shape(1, 64) };
    assert!(TimeMixLora::new(gpu, first, LoraRanks { v: 0, ..ranks }).is_ok());

    let tm = TimeMix::new(gpu, shape(2, 64)).unwrap();
    let c = 128;
    let buf = |n: usize| gpu.buffer("test", n as u64 * 4).unwrap();
    let (rkv, lora, params, vf, state, out) = (buf(3 * c), buf(4 * c), buf(5 * c), buf(c), buf(c * 64), buf(c));
    let mut rec = gpu.recorder();
    let mut go = |mode: RowMode, tokens: u32, params: &GpuBuffer, state: &GpuBuffer| {
        tm.record(gpu, &mut rec, mode, tokens, rkv.all(), lora.all(), params.all(), vf.all(), state.all(), out.all())
    };
    for mode in RowMode::ALL {
        assert!(go(mode, 1, &params, &state).is_ok());
        assert!(go(mode, 0, &params, &state).is_err(), "zero tokens");
        assert!(go(mode, 2, &params, &state).is_err(), "buffers hold one token");
        assert!(go(mode, 1, &buf(4 * c), &state).is_err(), "params too short");
        assert!(go(mode, 1, &params, &buf(c * 64 - 1)).is_err(), "state too short");
    }
    // Two tokens: one state is enough in Sequence mode, two are needed in Independent mode.
    let (rkv, lora, vf, out) = (buf(6 * c), buf(8 * c), buf(2 * c), buf(2 * c));
    let mut go2 = |mode: RowMode, state: &GpuBuffer| {
        tm.record(gpu, &mut rec, mode, 2, rkv.all(), lora.all(), params.all(), vf.all(), state.all(), out.all())
    };
    assert!(go2(RowMode::Sequence, &state).is_ok());
    assert!(go2(RowMode::Independent, &state).is_err(), "one state for two independent rows");
    assert!(go2(RowMode::Independent, &buf(2 * c * 64)).is_ok());
}
