//! GPU-vs-reference tests of the tensor-core matmul. Adapters without cooperative matrices
//! (lavapipe) skip the GPU tests visibly; the precision model and the spec checks run anywhere.
//!
//! On a GPU with cooperative matrices: `cargo test -p kernels --release matmul_coop`.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::formats::{self, WeightFormat};
use crate::matmul::reference;
use crate::projection::{Activation, Segment};
use crate::projection_testing::{self as pt, TestData, TestWeight};
use crate::testing::{self, Rng, Tolerance};

/// The shared device when it runs the kernel; otherwise prints a visible skip for `test`.
fn coop_gpu(test: &str) -> Option<&'static Gpu> {
    let gpu = testing::gpu();
    match MatmulCoop::device_supports(gpu) {
        Ok(()) => Some(gpu),
        Err(e) => {
            testing::skip(testing::Requirement::Coop, test, &format!("{} ({e})", gpu.caps().adapter_name));
            None
        }
    }
}

/// The tolerance of `precision` for `format` against the exact (f64, f32-input) reference.
fn tolerance(format: WeightFormat, precision: CoopPrecision) -> Tolerance {
    match (format, precision) {
        // hi + lo reproduces the f32 input; F16 weights are exact in f16.
        (WeightFormat::F16, CoopPrecision::Split) => Tolerance::DOT,
        _ => Tolerance::COOP_F16_INPUTS,
    }
}

fn run(gpu: &Gpu, spec: &Projection, precision: CoopPrecision, t: u32, w: &TestWeight, d: &TestData) -> Vec<f32> {
    let mm = MatmulCoop::new(gpu, spec, precision).unwrap();
    let weights = pt::upload_weight(gpu, spec, w);
    let ranges: Vec<BufferRange<'_>> = weights.iter().map(|b| b.all()).collect();
    let x = pt::upload_padded(gpu, &d.x);
    let bias = testing::upload(gpu, &d.bias);
    let y = testing::Guarded::with_contents(gpu, &d.y0);
    let mut rec = gpu.recorder();
    mm.record(gpu, &mut rec, t, x.all(), &ranges, Some(bias.all()), y.range()).unwrap();
    rec.submit();
    y.read(gpu)
}

fn check(gpu: &Gpu, spec: &Projection, precision: CoopPrecision, t: u32, seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(seed);
    let w = pt::weight(spec, &mut rng);
    let d = pt::data(spec, t, &mut rng);
    let got = run(gpu, spec, precision, t, &w, &d);
    let want = pt::expected(spec, t, &w, &d);
    testing::assert_close(
        &format!("matmul_coop {precision:?} T={t} {spec:?}"),
        &got,
        &want,
        tolerance(spec.format, precision),
    )
}

/// A random segment the kernel supports for `format`: K a multiple of 32 (and whole blocks of the
/// format), input offsets a multiple of 4, rows of 1 to 300 (not multiples of the 128-row tile).
fn segment(format: WeightFormat) -> impl Strategy<Value = Segment> {
    let k = prop_oneof![Just(32u32), Just(64), Just(96), (1u32..9).prop_map(|b| 32 * b)]
        .prop_map(move |k| pt::whole_blocks(format, k));
    let rows = prop_oneof![Just(1u32), Just(33), 2u32..140, Just(128), Just(300)];
    let act = prop_oneof![
        Just(Activation::None),
        Just(Activation::Tanh),
        Just(Activation::Sigmoid),
        Just(Activation::ReluSq)
    ];
    let offset = prop_oneof![Just(0u32), (0u32..40).prop_map(|o| 4 * o)];
    (rows, k, offset, act, any::<bool>()).prop_map(|(rows, k, off, act, bias)| Segment {
        rows,
        k,
        x_offset: off,
        activation: act,
        bias,
    })
}

fn tokens() -> impl Strategy<Value = u32> {
    prop_oneof![Just(1u32), Just(7), Just(128), Just(129), Just(300), 2u32..400]
}

fn precision() -> impl Strategy<Value = CoopPrecision> {
    prop_oneof![Just(CoopPrecision::Half), Just(CoopPrecision::Split)]
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matmul_coop_matches_reference(spec in pt::projection_of(segment), p in precision(), t in tokens(), seed in any::<u64>()) {
        if let Some(gpu) = coop_gpu("matmul_coop_matches_reference") {
            check(gpu, &spec, p, t, seed)?;
        }
    }
}

#[test]
fn matmul_coop_segments_epilogues_and_odd_sizes() {
    let Some(gpu) = coop_gpu("matmul_coop_segments_epilogues_and_odd_sizes") else { return };
    for (i, t) in [1u32, 16, 100, 128, 250].into_iter().enumerate() {
        for format in WeightFormat::ALL {
            for precision in [CoopPrecision::Half, CoopPrecision::Split] {
                let k = |k| pt::whole_blocks(format, k);
                let spec = Projection::segmented(
                    format,
                    vec![
                        Segment::new(70, k(96)).activation(Activation::Tanh),
                        Segment::new(130, k(64)).input_at(96).with_bias(),
                        Segment::new(5, k(32)).input_at(200).activation(Activation::ReluSq),
                        Segment::new(257, k(160)).input_at(4).activation(Activation::Sigmoid).with_bias(),
                    ],
                );
                check(gpu, &spec, precision, t, i as u64).unwrap();
                let odd = Projection::new(format, 129, k(32)).activation(Activation::Sigmoid).residual();
                check(gpu, &odd, precision, t, i as u64).unwrap();
            }
        }
    }
}

#[test]
fn matmul_coop_real_model_sizes() {
    let Some(gpu) = coop_gpu("matmul_coop_real_model_sizes") else { return };
    let (c, f) = (2560u32, 10240u32);
    // r, k, v of one layer as three segments of one packed weight.
    let rkv = Projection::segmented(
        WeightFormat::Q8_0,
        vec![Segment::new(c, c), Segment::new(c, c).input_at(2 * c), Segment::new(c, c).input_at(3 * c)],
    );
    check(gpu, &rkv, CoopPrecision::Half, 130, 1).unwrap();
    let key = Projection::new(WeightFormat::F16, f, c).activation(Activation::ReluSq);
    check(gpu, &key, CoopPrecision::Half, 200, 2).unwrap();
    let value = Projection::new(WeightFormat::Q8_0, c, f).residual();
    check(gpu, &value, CoopPrecision::Split, 129, 3).unwrap();
    let value16 = Projection::new(WeightFormat::F16, c, f).residual();
    check(gpu, &value16, CoopPrecision::Split, 65, 4).unwrap();
    // The formats of published models: K-quant matrices, a Q6_K head.
    let value4k = Projection::new(WeightFormat::Q4_K, c, f).residual();
    check(gpu, &value4k, CoopPrecision::Half, 130, 5).unwrap();
    let head6k = Projection::new(WeightFormat::Q6_K, 4096, c);
    check(gpu, &head6k, CoopPrecision::Half, 129, 6).unwrap();
}

#[test]
fn matmul_coop_row_blocks_are_dispatched_separately() {
    let Some(gpu) = coop_gpu("matmul_coop_row_blocks_are_dispatched_separately") else { return };
    for format in WeightFormat::ALL {
        let (rows, k) = (300u32, pt::whole_blocks(format, 64));
        let limit = format.gpu_words(k as usize) as u64 * 4 * 130 + 48; // 130 rows per block
        let blocks = formats::row_blocks(format, rows as usize, k as usize, limit).unwrap();
        assert_eq!(blocks.len(), 3, "{format:?}: {blocks:?}");
        let spec = Projection::new(format, rows, k)
            .activation(Activation::Tanh)
            .with_bias()
            .residual()
            .split(blocks.iter().map(|&b| b as u32).collect());
        check(gpu, &spec, CoopPrecision::Half, 140, 5).unwrap();
    }
}

#[test]
fn matmul_coop_bad_bindings_are_errors() {
    let Some(gpu) = coop_gpu("matmul_coop_bad_bindings_are_errors") else { return };
    let spec = Projection::new(WeightFormat::F16, 8, 32);
    let mm = MatmulCoop::new(gpu, &spec, CoopPrecision::Half).unwrap();
    let buf = |n: usize| gpu.buffer("test", n as u64 * 4).unwrap();
    let (x, w, y) = (buf(64), buf(128), buf(16));
    let mut rec = gpu.recorder();
    assert!(mm.record(gpu, &mut rec, 2, x.all(), &[w.all()], None, y.all()).is_ok());
    assert!(mm.record(gpu, &mut rec, 0, x.all(), &[w.all()], None, y.all()).is_err());
    assert!(mm.record(gpu, &mut rec, 3, x.all(), &[w.all()], None, y.all()).is_err());
    assert!(mm.record(gpu, &mut rec, 2, x.all(), &[], None, y.all()).is_err());
    rec.submit();
}

#[test]
fn matmul_coop_refuses_what_it_cannot_compute() {
    let ok = Projection::new(WeightFormat::Q8_0, 10, 64);
    assert!(MatmulCoop::spec_supported(&ok).is_ok());
    assert!(MatmulCoop::spec_supported(&Projection::new(WeightFormat::F32, 10, 64)).is_ok());
    assert!(MatmulCoop::spec_supported(&Projection::new(WeightFormat::Q4_K, 10, 256)).is_ok());
    assert!(MatmulCoop::spec_supported(&Projection::new(WeightFormat::IQ4_NL, 10, 96)).is_ok());
    assert!(MatmulCoop::spec_supported(&Projection::new(WeightFormat::F16, 10, 48)).is_err());
    let unaligned = Projection::segmented(WeightFormat::F16, vec![Segment::new(4, 32).input_at(2)]);
    assert!(MatmulCoop::spec_supported(&unaligned).is_err());
    assert!(MatmulCoop::spec_supported(&Projection::segmented(WeightFormat::F16, vec![])).is_err());
    // A device without the feature gets a typed error, never a panic.
    let gpu = testing::gpu();
    if MatmulCoop::device_supports(gpu).is_err() {
        assert!(MatmulCoop::new(gpu, &ok, CoopPrecision::Half).is_err());
    }
}

/// Rounds like the kernel's staging: f32 -> f16 (round to nearest even) -> f32.
fn f16_round(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// The kernel's arithmetic on the CPU: X rounded to f16 (or split into hi + lo), the
/// dequantised weight rounded to f16, then the exact reference. Its error against the exact
/// reference is what [`Tolerance::COOP_F16_INPUTS`] must cover, on model-like data (unit
/// activations with a few large channels, weights ~ 1/sqrt(K), real widths).
#[test]
fn matmul_coop_precision_model_fits_its_tolerance() {
    for (format, rows, k, seed) in [
        (WeightFormat::F16, 64u32, 2560u32, 1u64),
        (WeightFormat::Q8_0, 64, 10240, 2),
        (WeightFormat::F32, 64, 2560, 3),
        (WeightFormat::Q4_K, 64, 10240, 4),
        (WeightFormat::BF16, 64, 2560, 5),
    ] {
        for precision in [CoopPrecision::Half, CoopPrecision::Split] {
            let spec = Projection::new(format, rows, k).activation(Activation::ReluSq).residual();
            let t = 9;
            let mut rng = Rng::new(seed);
            let w = pt::weight(&spec, &mut rng);
            let mut d = pt::data(&spec, t, &mut rng);
            // Outlier channels, as LayerNorm outputs of real models have.
            for (i, v) in d.x.iter_mut().enumerate() {
                if (i % k as usize).is_multiple_of(97) {
                    *v *= 8.0;
                }
            }
            let want = pt::expected(&spec, t, &w, &d);
            let x_emu: Vec<f32> = match precision {
                CoopPrecision::Half => d.x.iter().map(|&v| f16_round(v)).collect(),
                CoopPrecision::Split => d.x.iter().map(|&v| f16_round(v) + f16_round(v - f16_round(v))).collect(),
            };
            let w_emu: Vec<f32> = w.values.iter().map(|&v| f16_round(v)).collect();
            if format == WeightFormat::F16 {
                assert_eq!(w_emu, w.values, "F16 weights are exact in f16");
            }
            let mut got = d.y0.clone();
            reference::projection(&spec, t as usize, &x_emu, &w_emu, &d.bias, &mut got);
            let what = format!("emulated {precision:?} {format:?} K={k}");
            testing::assert_close(&what, &got, &want, tolerance(format, precision)).unwrap();
            // The tolerance is not vacuous: plain f16 inputs are measurably worse than f32.
            if precision == CoopPrecision::Half {
                assert!(testing::assert_close(&what, &got, &want, Tolerance::F32_EXACTISH).is_err());
            }
        }
    }
}
