use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

/// A sampler and its GPU buffers for one sequence.
struct Session<'g> {
    gpu: &'g Gpu,
    k: Sample,
    v: usize,
    logits: gpu_core::GpuBuffer,
    counts: testing::Guarded,
    seen: testing::Guarded,
    scratch: testing::Guarded,
    state: testing::Guarded,
    history: testing::Guarded,
    out_token: testing::Guarded,
    params: gpu_core::GpuBuffer,
}

impl<'g> Session<'g> {
    fn new(gpu: &'g Gpu, v: usize, history: usize, params: &SampleParams, seed: u64) -> Self {
        let k = Sample::new(gpu, v as u32).unwrap();
        let state: Vec<f32> = initial_state(seed).iter().map(|&w| f32::from_bits(w)).collect();
        Session {
            gpu,
            v,
            logits: gpu.buffer("logits", v as u64 * 4).unwrap(),
            counts: testing::Guarded::new(gpu, v),
            seen: testing::Guarded::new(gpu, v.div_ceil(32)),
            scratch: testing::Guarded::new(gpu, v),
            state: testing::Guarded::with_contents(gpu, &state),
            history: testing::Guarded::new(gpu, history),
            out_token: testing::Guarded::new(gpu, 1),
            params: gpu.uniform("params", params.as_bytes()).unwrap(),
            k,
        }
    }

    fn record(&self, rec: &mut Recorder<'_>) {
        let b = SampleBuffers {
            logits: self.logits.all(),
            counts: self.counts.range(),
            seen: self.seen.range(),
            scratch: self.scratch.range(),
            state: self.state.range(),
            // Bound to its logical length: the kernel must stop there (the guard words check it).
            history: crate::prefix(self.history.range(), self.history.len as u64 * 4),
            out_token: self.out_token.range(),
            params: self.params.all(),
        };
        self.k.record(self.gpu, rec, &b).unwrap();
    }

    /// One step on `logits`, submitted on its own.
    fn step(&self, logits: &[f32]) {
        self.gpu.write(&self.logits, 0, bytemuck::cast_slice(logits));
        let mut rec = self.gpu.recorder();
        self.record(&mut rec);
        rec.submit();
    }

    fn seen_bits(&self) -> Vec<bool> {
        let words = self.seen.read_u32(self.gpu);
        (0..self.v).map(|i| words[i / 32] >> (i % 32) & 1 == 1).collect()
    }
}

/// Runs `steps` steps on fresh random logits each and compares every token with the
/// reference, then the counts, seen bits and step counter. Stops comparing after a borderline
/// step (the GPU may legitimately pick another token there, and the states then diverge).
fn check(
    gpu: &Gpu,
    v: usize,
    steps: usize,
    params: SampleParams,
    scale: f32,
    seed: u64,
) -> Result<usize, TestCaseError> {
    let mut r = testing::Rng::new(seed);
    let s = Session::new(gpu, v, steps, &params, seed);
    let mut counts = vec![0.0f32; v];
    let mut seen = vec![false; v];
    let mut compared = 0;
    for step in 0..steps {
        let logits = r.vec(v, scale);
        s.step(&logits);
        let want = sample(&logits, &mut counts, &mut seen, &params, seed, step as u32);
        let got = s.out_token.read_u32(gpu)[0];
        if want.borderline {
            return Ok(compared);
        }
        prop_assert_eq!(got, want.token, "step {} of V {} with {:?}", step, v, params);
        compared += 1;
    }
    let history = s.history.read_u32(gpu);
    prop_assert_eq!(s.state.read_u32(gpu)[2], steps as u32);
    prop_assert_eq!(s.seen_bits(), seen);
    testing::assert_close("counts", &s.counts.read(gpu), &counts, Tolerance::F32_EXACTISH)?;
    prop_assert_eq!(history.len(), steps);
    Ok(compared)
}

fn params_strategy() -> impl Strategy<Value = SampleParams> {
    (
        prop_oneof![Just(0.0f32), Just(0.5), Just(1.0), Just(1.7)],
        prop_oneof![Just(0.0f32), Just(0.3), Just(0.85), Just(1.0), 0.0f32..1.0],
        prop_oneof![Just(0u32), Just(1), Just(5), Just(50), 0u32..300],
        0.0f32..1.0,
        0.0f32..1.0,
        prop_oneof![Just(0.996f32), Just(1.0), 0.5f32..1.0],
    )
        .prop_map(|(temperature, top_p, top_k, presence, frequency, decay)| SampleParams {
            temperature,
            top_p,
            top_k,
            presence,
            frequency,
            decay,
            pad: [0; 2],
        })
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(v in testing::widths(), steps in 1usize..6, params in params_strategy(),
                         scale in 0.5f32..5.0, seed in any::<u64>()) {
        check(testing::gpu(), v, steps, params, scale, seed)?;
    }
}

#[test]
fn vocabulary_size_under_default_limits() {
    // With a flat tail of thousands of kept tokens almost every draw lands within f32 rounding
    // of another token, so these use peaked logits or a small kept set.
    let gpu = testing::gpu_default_limits();
    let d = SampleParams::CHATRWKV_DEFAULT;
    let mut compared = 0;
    for (i, (params, scale)) in [
        (d, 8.0),
        (SampleParams { top_k: 40, temperature: 0.7, ..d }, 3.0),
        (SampleParams { top_p: 0.3, temperature: 1.3, ..d }, 4.0),
    ]
    .into_iter()
    .enumerate()
    {
        compared += check(gpu, 65536, 3, params, scale, 100 + i as u64).unwrap();
    }
    assert!(compared >= 6, "only {compared} steps were far enough from a decision boundary to compare");
}

/// Every greedy setting picks the argmax of the penalised logits, step after step.
#[test]
fn greedy_settings_pick_the_argmax() {
    let gpu = testing::gpu();
    let base = SampleParams { presence: 0.7, frequency: 0.4, ..SampleParams::CHATRWKV_DEFAULT };
    for params in [
        SampleParams { top_k: 1, ..base },
        SampleParams { top_p: 1e-7, ..base },
        SampleParams { temperature: 0.0, ..base },
        SampleParams { temperature: 0.0, top_p: 1.0, top_k: 7, ..base },
    ] {
        let v = 1000;
        let s = Session::new(gpu, v, 8, &params, 9);
        let mut r = testing::Rng::new(5);
        let mut counts = vec![0.0f32; v];
        let mut seen = vec![false; v];
        // Few distinct logits so that penalties change the winner across steps.
        let logits: Vec<f32> = (0..v).map(|_| (r.next_u64() % 8) as f32 * 0.1 + r.normal() * 0.01).collect();
        for step in 0..8 {
            s.step(&logits);
            let penalised: Vec<f32> = (0..v)
                .map(|i| if seen[i] { logits[i] - (base.presence + counts[i] * base.frequency) } else { logits[i] })
                .collect();
            let want = crate::argmax::argmax(&penalised, v)[0];
            assert_eq!(s.out_token.read_u32(gpu)[0], want, "step {step} with {params:?}");
            assert_eq!(sample(&logits, &mut counts, &mut seen, &params, 9, step).token, want);
        }
    }
}

/// Near-flat logits repeated for 300 steps in one submission: the penalties decide which
/// tokens come next, so the sequence follows the reference only if counts, presence,
/// frequency and decay all act exactly as specified.
#[test]
fn penalties_steer_the_sequence() {
    let gpu = testing::gpu();
    let v = 12;
    let logits: Vec<f32> = (0..v).map(|i| 0.05 * i as f32).collect();
    for params in [
        SampleParams {
            temperature: 1.0,
            top_p: 0.6,
            top_k: 0,
            presence: 0.3,
            frequency: 0.5,
            decay: 0.99,
            pad: [0; 2],
        },
        SampleParams { temperature: 0.0, top_p: 1.0, top_k: 0, presence: 0.1, frequency: 0.7, decay: 0.9, pad: [0; 2] },
        SampleParams {
            temperature: 0.6,
            top_p: 1.0,
            top_k: 3,
            presence: 0.0,
            frequency: 1.0,
            decay: 0.996,
            pad: [0; 2],
        },
    ] {
        let n = 300;
        let s = Session::new(gpu, v, n, &params, 21);
        gpu.write(&s.logits, 0, bytemuck::cast_slice(&logits));
        let mut rec = gpu.recorder();
        for _ in 0..n {
            s.record(&mut rec);
        }
        rec.submit();
        let got = s.history.read_u32(gpu);
        let (mut counts, mut seen) = (vec![0.0f32; v], vec![false; v]);
        let mut compared = 0;
        for (step, &tok) in got.iter().enumerate() {
            let want = sample(&logits, &mut counts, &mut seen, &params, 21, step as u32);
            if want.borderline {
                break;
            }
            assert_eq!(tok, want.token, "step {step} with {params:?}");
            compared += 1;
        }
        assert!(compared >= 50, "only {compared} steps compared with {params:?}");
        if compared == n {
            testing::assert_close("counts", &s.counts.read(gpu), &counts, Tolerance::F32_REDUCTION).unwrap();
            assert_eq!(s.seen_bits(), seen);
        }
    }
}

/// 2000 draws in one submission: the tokens equal the reference's, and their frequencies match
/// the distribution (at temperature 1, and sharpened/flattened by the temperature).
#[test]
fn empirical_distribution() {
    let gpu = testing::gpu();
    let probs = [0.1f64, 0.2, 0.3, 0.4];
    let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
    for temperature in [1.0f32, 2.0, 0.5] {
        let params =
            SampleParams { temperature, top_p: 1.0, top_k: 0, presence: 0.0, frequency: 0.0, decay: 1.0, pad: [0; 2] };
        let n = 2000;
        let s = Session::new(gpu, 4, n, &params, 77);
        gpu.write(&s.logits, 0, bytemuck::cast_slice(&logits));
        let mut rec = gpu.recorder();
        for _ in 0..n {
            s.record(&mut rec);
        }
        rec.submit();
        let got = s.history.read_u32(gpu);
        assert_eq!(s.state.read_u32(gpu)[2], n as u32);
        let (mut counts, mut seen) = (vec![0.0f32; 4], vec![false; 4]);
        let mut same = 0;
        for (step, &tok) in got.iter().enumerate() {
            let want = sample(&logits, &mut counts, &mut seen, &params, 77, step as u32);
            same += (want.token == tok || want.borderline) as usize;
        }
        assert_eq!(same, n, "GPU and reference draws differ (T = {temperature})");
        let norm: f64 = probs.iter().map(|p| p.powf(1.0 / temperature as f64)).sum();
        for (t, p) in probs.iter().enumerate() {
            let want = p.powf(1.0 / temperature as f64) / norm;
            let freq = got.iter().filter(|&&x| x == t as u32).count() as f64 / n as f64;
            // 4.5 standard deviations of a binomial frequency over 2000 draws.
            let tol = 4.5 * (want * (1.0 - want) / n as f64).sqrt();
            assert!((freq - want).abs() < tol, "T {temperature} token {t}: frequency {freq}, expected {want}");
        }
    }
}

/// Top-k and top-p keep exactly the tokens they should: draws never leave the kept set.
#[test]
fn draws_stay_inside_the_kept_set() {
    let gpu = testing::gpu();
    // Probabilities 0.4, 0.3, 0.2, 0.06, 0.04: top_p 0.75 keeps 3 tokens, top_k 2 keeps 2.
    let probs = [0.06f64, 0.4, 0.04, 0.3, 0.2];
    let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
    for (top_p, top_k, kept) in [(0.75f32, 0, vec![1u32, 3, 4]), (1.0, 2, vec![1, 3]), (0.5, 3, vec![1, 3])] {
        let params =
            SampleParams { temperature: 1.0, top_p, top_k, presence: 0.0, frequency: 0.0, decay: 1.0, pad: [0; 2] };
        let s = Session::new(gpu, 5, 300, &params, 3);
        gpu.write(&s.logits, 0, bytemuck::cast_slice(&logits));
        let mut rec = gpu.recorder();
        for _ in 0..300 {
            s.record(&mut rec);
        }
        rec.submit();
        let got = s.history.read_u32(gpu);
        for &k in &kept {
            assert!(got.contains(&k), "top_p {top_p} top_k {top_k}: token {k} never drawn");
        }
        assert!(got.iter().all(|t| kept.contains(t)), "top_p {top_p} top_k {top_k}: drew outside {kept:?}");
    }
}

#[test]
fn history_stops_at_its_end() {
    // Three steps into a history of two: the third token is only in out_token (a write past the
    // end would hit the guard words).
    let gpu = testing::gpu();
    let params = SampleParams::CHATRWKV_DEFAULT;
    let s = Session::new(gpu, 50, 2, &params, 1);
    let logits = testing::Rng::new(2).vec(50, 2.0);
    for _ in 0..3 {
        s.step(&logits);
    }
    assert_eq!(s.history.read_u32(gpu).len(), 2);
    assert_eq!(s.state.read_u32(gpu)[2], 3);
}

#[test]
fn rejects_bad_input() {
    let gpu = testing::gpu();
    assert!(Sample::new(gpu, 0).is_err());
    for bad in [
        SampleParams { temperature: -1.0, ..SampleParams::CHATRWKV_DEFAULT },
        SampleParams { top_p: 1.5, ..SampleParams::CHATRWKV_DEFAULT },
        SampleParams { decay: f32::NAN, ..SampleParams::CHATRWKV_DEFAULT },
    ] {
        assert!(bad.validate().is_err());
    }
    assert!(SampleParams::CHATRWKV_DEFAULT.validate().is_ok());
    let k = Sample::new(gpu, 100).unwrap();
    let small = gpu.buffer("small", 64).unwrap();
    let b = SampleBuffers {
        logits: small.all(),
        counts: small.all(),
        seen: small.all(),
        scratch: small.all(),
        state: small.all(),
        history: small.all(),
        out_token: small.all(),
        params: small.all(),
    };
    assert!(k.record(gpu, &mut gpu.recorder(), &b).is_err());
}

#[test]
fn uniform_numbers_are_uniform() {
    // The hash behind the draws: mean and spread of 100k consecutive steps.
    let n = 100_000;
    let xs: Vec<f64> = (0..n).map(|s| draw_uniform(12345, s) as f64).collect();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let below_tenth = xs.iter().filter(|&&x| x < 0.1).count() as f64 / n as f64;
    assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
    assert!((below_tenth - 0.1).abs() < 0.005, "P(u < 0.1) = {below_tenth}");
    assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
}
