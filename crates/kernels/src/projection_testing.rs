//! Test helpers shared by the matvec, matmul and LoRA tests: random projections, their weights
//! in every format, padded uploads and one run against the CPU reference.

use gpu_core::{Gpu, GpuBuffer};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::formats::{self, WeightFormat};
use crate::matvec::reference;
use crate::packing::{self, MatrixBytes};
use crate::projection::{Activation, Projection, Segment};
use crate::testing::{self, Rng, Tolerance};

/// A projection's weight: GGUF bytes per segment and the dequantised values, stacked by rows.
pub struct TestWeight {
    pub gguf: Vec<Vec<u8>>,
    pub values: Vec<f32>,
}

/// Random weights for `spec` (scaled by 1/sqrt(k) so that outputs stay near 1).
pub fn weight(spec: &Projection, rng: &mut Rng) -> TestWeight {
    let mut gguf = Vec::new();
    let mut values = Vec::new();
    for s in &spec.segments {
        let v: Vec<f32> = rng.vec(s.rows as usize * s.k as usize, 1.0 / (s.k as f32).sqrt());
        let bytes = formats::encode(spec.format, &v).unwrap();
        values.extend(formats::dequantize(spec.format, &bytes).unwrap());
        gguf.push(bytes);
    }
    TestWeight { gguf, values }
}

/// A Q8_0 weight for a single-segment Q8_0 `spec` whose quants run through every byte value
/// (-128 to 127, repeating) with block scales 1, 0.5 and 2: checks the GPU's int8 decoding.
pub fn every_q8_byte_weight(spec: &Projection) -> TestWeight {
    let s = &spec.segments[0];
    let blocks = s.rows as usize * s.k as usize / 32;
    let mut bytes = Vec::with_capacity(blocks * 34);
    for b in 0..blocks {
        let scale = half::f16::from_f32([1.0, 0.5, 2.0][b % 3]);
        bytes.extend_from_slice(&scale.to_le_bytes());
        bytes.extend((0..32).map(|i| ((b * 32 + i) % 256) as u8));
    }
    let values = formats::dequantize(WeightFormat::Q8_0, &bytes).unwrap();
    TestWeight { gguf: vec![bytes], values }
}

/// Uploads the weight of `spec` as the launchers bind it: one buffer, or one per row block.
pub fn upload_weight(gpu: &Gpu, spec: &Projection, w: &TestWeight) -> Vec<GpuBuffer> {
    if spec.row_blocks.is_empty() {
        let mats: Vec<MatrixBytes<'_>> = spec
            .segments
            .iter()
            .zip(&w.gguf)
            .map(|(s, b)| MatrixBytes { bytes: b, rows: s.rows as usize, k: s.k as usize })
            .collect();
        let words = packing::pack_matrices(spec.format, &mats).unwrap();
        vec![gpu.buffer_from("test weight", &words).unwrap()]
    } else {
        let blocks: Vec<usize> = spec.row_blocks.iter().map(|&r| r as usize).collect();
        packing::pack_row_blocks(spec.format, &w.gguf[0], spec.segments[0].k as usize, &blocks)
            .unwrap()
            .iter()
            .map(|words| gpu.buffer_from("test weight block", words).unwrap())
            .collect()
    }
}

/// Uploads `data` padded to a multiple of 16 bytes with NaN, so that a kernel reading past the
/// logical end poisons its output (which `assert_close` rejects).
pub fn upload_padded(gpu: &Gpu, data: &[f32]) -> GpuBuffer {
    let mut v = data.to_vec();
    v.resize(data.len().next_multiple_of(4).max(4), f32::NAN);
    gpu.buffer_from("test input", &v).unwrap()
}

/// Inputs, bias and previous output for `t` tokens of `spec`.
pub struct TestData {
    pub x: Vec<f32>,
    pub bias: Vec<f32>,
    pub y0: Vec<f32>,
}

pub fn data(spec: &Projection, t: u32, rng: &mut Rng) -> TestData {
    TestData {
        x: rng.vec(spec.x_len(t) as usize, 1.0),
        bias: rng.vec(spec.rows() as usize, 0.5),
        y0: rng.vec(spec.y_len(t) as usize, 1.0),
    }
}

/// The reference output for `t` tokens.
pub fn expected(spec: &Projection, t: u32, w: &TestWeight, d: &TestData) -> Vec<f32> {
    let mut y = d.y0.clone();
    reference::projection(spec, t as usize, &d.x, &w.values, &d.bias, &mut y);
    y
}

/// A random segment for `format`: rows of 1 to ~300, K not a multiple of 4 (except Q8_0),
/// inputs at aligned and unaligned offsets.
pub fn segment(format: WeightFormat) -> impl Strategy<Value = Segment> {
    let k = match format {
        WeightFormat::Q8_0 => (1u32..6).prop_map(|b| 32 * b).boxed(),
        _ => prop_oneof![Just(1u32), Just(33), Just(64), Just(96), 2u32..140].boxed(),
    };
    let rows = prop_oneof![Just(1u32), Just(33), 2u32..70, Just(300)];
    let act = prop_oneof![
        Just(Activation::None),
        Just(Activation::Tanh),
        Just(Activation::Sigmoid),
        Just(Activation::ReluSq)
    ];
    let offset = prop_oneof![Just(0u32), (0u32..40).prop_map(|o| 4 * o), 0u32..40];
    (rows, k, offset, act, any::<bool>()).prop_map(|(rows, k, off, act, bias)| Segment {
        rows,
        k,
        x_offset: off,
        activation: act,
        bias,
    })
}

/// A random projection: any format, 1 to 4 segments, with or without residual.
pub fn projection() -> impl Strategy<Value = Projection> {
    prop_oneof![Just(WeightFormat::F32), Just(WeightFormat::F16), Just(WeightFormat::Q8_0)].prop_flat_map(|f| {
        (proptest::collection::vec(segment(f), 1..=4), any::<bool>()).prop_map(move |(segs, residual)| {
            let p = Projection::segmented(f, segs);
            if residual {
                p.residual()
            } else {
                p
            }
        })
    })
}

/// Compares with the tolerance of f32 dot products.
pub fn assert_matches(what: &str, got: &[f32], want: &[f32]) -> Result<(), TestCaseError> {
    testing::assert_close(what, got, want, Tolerance::DOT)
}
