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

/// The byte ranges of a stored block that hold its f16 fields (`d`, and `m` or `dmin`).
fn f16_fields(format: WeightFormat) -> std::ops::Range<usize> {
    let b = format.block_bytes();
    match format {
        WeightFormat::Q4_1 | WeightFormat::Q5_1 | WeightFormat::Q4_K | WeightFormat::Q5_K => 0..4,
        WeightFormat::Q2_K => b - 4..b,
        _ => match format.split_d() {
            Some(at) => at..at + 2,
            None => 0..2, // IQ4_XS
        },
    }
}

/// A weight for a single-segment `spec` in a block format whose blocks have the f16 fields of
/// quantised random values and every other byte (quants, sub-block scales, high bits) running
/// through every value 0 to 255, repeating: checks the GPU's decoding of every bit pattern.
pub fn every_byte_weight(spec: &Projection, rng: &mut Rng) -> TestWeight {
    let s = &spec.segments[0];
    let format = spec.format;
    let n = s.rows as usize * s.k as usize;
    let mut bytes = formats::encode(format, &rng.vec(n, 0.05)).unwrap();
    let fields = f16_fields(format);
    let mut next = 0usize;
    for block in bytes.chunks_exact_mut(format.block_bytes()) {
        for (i, byte) in block.iter_mut().enumerate() {
            if !fields.contains(&i) {
                *byte = (next % 256) as u8;
                next += 1;
            }
        }
    }
    let values = formats::dequantize(format, &bytes).unwrap();
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

/// A random segment for `format`: rows of 1 to ~300, K not a multiple of 4 (element formats) or
/// 1 to 5 blocks of 32 or 1 to 2 blocks of 256, inputs at aligned and unaligned offsets.
pub fn segment(format: WeightFormat) -> impl Strategy<Value = Segment> {
    let k = match format.block_elements() {
        1 => prop_oneof![Just(1u32), Just(33), Just(64), Just(96), 2u32..140].boxed(),
        32 => (1u32..6).prop_map(|b| 32 * b).boxed(),
        block => (1u32..3).prop_map(move |b| block as u32 * b).boxed(),
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
    projection_of(segment)
}

/// [`projection`] with the segments a kernel supports (`segment(format)`).
pub fn projection_of<S: Strategy<Value = Segment> + 'static>(
    segment: fn(WeightFormat) -> S,
) -> impl Strategy<Value = Projection> {
    proptest::sample::select(WeightFormat::ALL.to_vec()).prop_flat_map(move |f| {
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

/// Every device the tests have: both variants and the default limits.
pub fn devices() -> Vec<(&'static str, &'static Gpu)> {
    vec![
        ("max limits", testing::gpu()),
        ("no subgroups", testing::gpu_without_subgroups()),
        ("default limits", testing::gpu_default_limits()),
    ]
}

/// Whether the fixed-shape tests run `format` at every shape, tile and device (F32, F16, Q8_0:
/// the formats of the models the engine is measured on, with fast reference encoders). The
/// others (their reference quantisers are slow on a software GPU, and each kernel decodes them
/// through one shared chunk path, weight_chunks.wgsl) run on a share of them, and in
/// `matvec::tests::chunked_formats_at_every_split`.
pub fn tested_everywhere(format: WeightFormat) -> bool {
    matches!(format, WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Q8_0)
}

/// The devices a fixed-shape test runs `format` on: all of them for the formats tested
/// everywhere, one in turn for the others (on a software GPU every pipeline costs a
/// compilation).
pub fn devices_for(format: WeightFormat) -> Vec<(&'static str, &'static Gpu)> {
    let all = devices();
    if tested_everywhere(format) {
        return all;
    }
    vec![all[format.shader_id() as usize % all.len()]]
}

/// `k` rounded up to whole blocks of `format`.
pub fn whole_blocks(format: WeightFormat, k: u32) -> u32 {
    k.next_multiple_of(format.block_elements() as u32)
}

/// Compares with the tolerance of f32 dot products.
pub fn assert_matches(what: &str, got: &[f32], want: &[f32]) -> Result<(), TestCaseError> {
    testing::assert_close(what, got, want, Tolerance::DOT)
}
