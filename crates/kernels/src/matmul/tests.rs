use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::formats::{self, WeightFormat};
use crate::projection::{Activation, Segment};
use crate::projection_testing::{self as pt, TestData, TestWeight};
use crate::testing::{self, Rng};

/// Runs `spec` for `t` tokens with `y` pre-filled with `d.y0` (with `tile`, else the launcher's
/// choice); returns the output.
fn run(gpu: &Gpu, spec: &Projection, t: u32, tile: Option<Tile>, w: &TestWeight, d: &TestData) -> Vec<f32> {
    let mm = Matmul::new(gpu, spec).unwrap();
    let weights = pt::upload_weight(gpu, spec, w);
    let ranges: Vec<BufferRange<'_>> = weights.iter().map(|b| b.all()).collect();
    let x = pt::upload_padded(gpu, &d.x);
    let bias = testing::upload(gpu, &d.bias);
    let y = testing::Guarded::with_contents(gpu, &d.y0);
    let mut rec = gpu.recorder();
    let tile = tile.unwrap_or(mm.tile_for(t));
    mm.record_tile(gpu, &mut rec, tile, t, x.all(), &ranges, Some(bias.all()), y.range()).unwrap();
    rec.submit();
    y.read(gpu)
}

fn check_tile(gpu: &Gpu, spec: &Projection, t: u32, tile: Option<Tile>, seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(seed);
    let w = pt::weight(spec, &mut rng);
    let d = pt::data(spec, t, &mut rng);
    let got = run(gpu, spec, t, tile, &w, &d);
    pt::assert_matches(&format!("matmul T={t} tile {tile:?} {spec:?}"), &got, &pt::expected(spec, t, &w, &d))
}

fn check(gpu: &Gpu, spec: &Projection, t: u32, seed: u64) -> Result<(), TestCaseError> {
    check_tile(gpu, spec, t, None, seed)
}

fn tokens() -> impl Strategy<Value = u32> {
    prop_oneof![Just(1u32), Just(7), Just(64), Just(100), 2u32..140]
}

fn tiles() -> impl Strategy<Value = Option<Tile>> {
    prop_oneof![
        Just(None),
        Just(Some(Tile::T16)),
        Just(Some(Tile::T64)),
        Just(Some(Tile::T128)),
        Just(Some(Tile::Lanes))
    ]
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(spec in pt::projection(), t in tokens(), tile in tiles(), seed in any::<u64>()) {
        check_tile(testing::gpu(), &spec, t, tile, seed)?;
    }
}

#[test]
fn every_tile_on_every_format() {
    // Token counts around each tile's size, rows past one 128-row tile, K past one 16-slice.
    let devices = [testing::gpu(), testing::gpu_without_subgroups(), testing::gpu_default_limits()];
    let mut i = 0;
    for (a, tile) in Tile::ALL.into_iter().enumerate() {
        for (b, format) in WeightFormat::ALL.into_iter().enumerate() {
            // The other formats on two of the four tiles each: the 16-token tile (64 threads,
            // two rows staged per thread) and the 64- or 128-token tile (256 threads).
            let runs = pt::tested_everywhere(format) || tile == Tile::T16 || ((a + b) % 2 == 0 && tile != Tile::Lanes);
            if !runs {
                continue;
            }
            // One device per tile and format: each pipeline is compiled once.
            let gpu = devices[(a + b) % 3];
            let (k0, k1) = (pt::whole_blocks(format, 64), pt::whole_blocks(format, 96));
            for t in [1, tile.tokens() - 1, tile.tokens() + 3] {
                let spec = Projection::segmented(
                    format,
                    vec![
                        Segment::new(130, k0).with_bias(),
                        Segment::new(20, k1).input_at(k0).activation(Activation::Tanh),
                    ],
                )
                .residual();
                check_tile(gpu, &spec, t, Some(tile), i as u64).unwrap();
                i += 1;
            }
        }
    }
}

#[test]
fn the_tile_follows_the_token_count() {
    assert_eq!(Tile::for_tokens(1, 20), Tile::T16);
    assert_eq!(Tile::for_tokens(16, 20), Tile::T16);
    assert_eq!(Tile::for_tokens(17, 20), Tile::T64);
    assert_eq!(Tile::for_tokens(512, 20), Tile::T64, "80 workgroups are too few for the 128-token tile");
    assert_eq!(Tile::for_tokens(512, 80), Tile::T128);
    assert_eq!(Tile::for_tokens(2048, 20), Tile::T128);
    assert_eq!(Tile::for_tokens(300, 200), Tile::T64, "a third of the last 128-token tile would be wasted");
}

#[test]
fn token_counts_of_the_brief_on_every_device() {
    let devices = [testing::gpu(), testing::gpu_without_subgroups(), testing::gpu_default_limits()];
    for (i, t) in [1u32, 7, 64, 100].into_iter().enumerate() {
        for format in WeightFormat::ALL {
            // The other formats at two of the token counts.
            if !pt::tested_everywhere(format) && (i + format.shader_id() as usize) % 2 == 1 {
                continue;
            }
            let k = |k| pt::whole_blocks(format, k);
            let spec = Projection::segmented(
                format,
                vec![
                    Segment::new(70, k(96)).activation(Activation::Tanh),
                    Segment::new(33, k(64)).input_at(96).with_bias(),
                    Segment::new(5, k(32)).input_at(200).activation(Activation::ReluSq),
                ],
            );
            check(devices[i % 3], &spec, t, i as u64).unwrap();
            // Odd sizes: K = 33 where the format allows it, else an unaligned input (no VEC).
            let odd = match format.block_elements() {
                1 => Projection::new(format, 37, 33),
                b => Projection::segmented(format, vec![Segment::new(37, b as u32).input_at(3)]),
            };
            check(devices[(i + 1) % 3], &odd.activation(Activation::Sigmoid).residual(), t, i as u64).unwrap();
        }
    }
}

#[test]
fn real_model_widths() {
    // Real row lengths (C = 2560, F = 10240) with a slice of the rows: a tile costs the same
    // for any T up to 64, and lavapipe is slow. Full-size rows x K run in the LoRA tests.
    let c = 2560;
    let rkv = Projection::segmented(
        WeightFormat::Q8_0,
        vec![Segment::new(64, c), Segment::new(70, c).input_at(2 * c), Segment::new(64, c).input_at(3 * c)],
    );
    check(testing::gpu(), &rkv, 5, 1).unwrap();
    let value = Projection::new(WeightFormat::F16, 100, 4 * c).residual();
    check(testing::gpu_default_limits(), &value, 3, 2).unwrap();
    let key = Projection::new(WeightFormat::F32, 130, c).activation(Activation::ReluSq);
    check(testing::gpu(), &key, 65, 3).unwrap();
    // The formats of published models: K-quant matrices, a Q6_K head.
    let q4k = Projection::new(WeightFormat::Q4_K, 64, 4 * c).residual();
    check(testing::gpu_default_limits(), &q4k, 9, 5).unwrap();
    let q6k = Projection::new(WeightFormat::Q6_K, 130, c);
    check(testing::gpu(), &q6k, 17, 6).unwrap();
    check(testing::gpu(), &Projection::new(WeightFormat::F32, 1, 1), 5, 4).unwrap();
}

#[test]
fn row_blocks_are_dispatched_separately() {
    for format in WeightFormat::ALL {
        let (rows, k) = (150u32, pt::whole_blocks(format, 64));
        let limit = format.gpu_words(k as usize) as u64 * 4 * 60 + 48; // 60 rows per block
        let blocks = formats::row_blocks(format, rows as usize, k as usize, limit).unwrap();
        assert_eq!(blocks.len(), 3, "{format:?}: {blocks:?}");
        let spec = Projection::new(format, rows, k)
            .activation(Activation::Tanh)
            .with_bias()
            .residual()
            .split(blocks.iter().map(|&b| b as u32).collect());
        check(testing::gpu(), &spec, 70, 5).unwrap();
    }
}

#[test]
fn bad_shapes_and_bindings_are_errors() {
    let gpu = testing::gpu();
    let f32 = WeightFormat::F32;
    assert!(Matmul::new(gpu, &Projection::new(WeightFormat::Q8_0, 4, 40)).is_err());
    assert!(Matmul::new(gpu, &Projection::segmented(f32, vec![])).is_err());
    let spec = Projection::new(f32, 8, 8);
    let mm = Matmul::new(gpu, &spec).unwrap();
    let buf = |n: usize| gpu.buffer("test", n as u64 * 4).unwrap();
    let (x, w, y) = (buf(16), buf(64), buf(16));
    let mut rec = gpu.recorder();
    assert!(mm.record(gpu, &mut rec, 2, x.all(), &[w.all()], None, y.all()).is_ok());
    assert!(mm.record(gpu, &mut rec, 0, x.all(), &[w.all()], None, y.all()).is_err());
    assert!(mm.record(gpu, &mut rec, 3, x.all(), &[w.all()], None, y.all()).is_err());
    assert!(mm.record(gpu, &mut rec, 2, x.all(), &[], None, y.all()).is_err());
    rec.submit();
}

#[test]
fn every_byte_value_decodes_exactly() {
    // Each block format on the CPU tile (weight4's decoders) and on one GPU tile (Q8_0's fast
    // path, or the chunk decoders of weight_chunks.wgsl in slot order).
    let blocked = WeightFormat::ALL.into_iter().filter(|f| f.block_elements() > 1);
    let runs = blocked.enumerate().flat_map(|(i, f)| [(f, [Tile::T16, Tile::T64][i % 2]), (f, Tile::Lanes)]);
    for (format, tile) in runs {
        let spec = Projection::new(format, 24, 2 * format.block_elements() as u32);
        let mut rng = Rng::new(8);
        let w = pt::every_byte_weight(&spec, &mut rng);
        let d = pt::data(&spec, 5, &mut rng);
        let got = run(testing::gpu(), &spec, 5, Some(tile), &w, &d);
        let what = format!("matmul every {format:?} byte, tile {tile:?}");
        pt::assert_matches(&what, &got, &pt::expected(&spec, 5, &w, &d)).unwrap();
    }
}
