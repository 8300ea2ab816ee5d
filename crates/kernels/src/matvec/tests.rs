use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::formats;
use crate::projection::{Activation, Segment};
use crate::projection_testing::{self as pt, devices, TestData, TestWeight};
use crate::testing::{self, Rng};

/// Runs `spec` on `gpu` with `y` pre-filled with `d.y0`; returns the output.
fn run(gpu: &Gpu, spec: &Projection, w: &TestWeight, d: &TestData) -> Vec<f32> {
    run_with(gpu, spec, Matvec::new(gpu, spec).unwrap(), w, d)
}

fn run_with(gpu: &Gpu, spec: &Projection, mv: Matvec, w: &TestWeight, d: &TestData) -> Vec<f32> {
    let weights = pt::upload_weight(gpu, spec, w);
    let ranges: Vec<BufferRange<'_>> = weights.iter().map(|b| b.all()).collect();
    let x = pt::upload_padded(gpu, &d.x);
    let bias = testing::upload(gpu, &d.bias);
    let y = testing::Guarded::with_contents(gpu, &d.y0);
    let mut rec = gpu.recorder();
    mv.record(gpu, &mut rec, x.all(), &ranges, Some(bias.all()), y.range()).unwrap();
    rec.submit();
    y.read(gpu)
}

fn check(gpu: &Gpu, spec: &Projection, seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(seed);
    let w = pt::weight(spec, &mut rng);
    let d = pt::data(spec, 1, &mut rng);
    let got = run(gpu, spec, &w, &d);
    pt::assert_matches(&format!("matvec {spec:?}"), &got, &pt::expected(spec, 1, &w, &d))
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn plain_variant_matches_reference(spec in pt::projection(), seed in any::<u64>()) {
        let gpu = testing::gpu_without_subgroups();
        prop_assert!(!Matvec::new(gpu, &spec).unwrap().uses_subgroups());
        check(gpu, &spec, seed)?;
    }

    #[test]
    fn subgroup_variant_matches_reference(spec in pt::projection(), seed in any::<u64>()) {
        let gpu = testing::gpu();
        if gpu.caps().subgroups.is_none() {
            testing::skip(testing::Requirement::Subgroups, "matvec subgroup_variant_matches_reference", "the adapter has no subgroups");
            return Ok(());
        }
        prop_assert!(Matvec::new(gpu, &spec).unwrap().uses_subgroups());
        check(gpu, &spec, seed)?;
    }
}

/// `spec` with every segment's rows rounded up to a multiple of 4, so that every row-group size fits.
fn rows_by_four(mut spec: Projection) -> Projection {
    for s in &mut spec.segments {
        s.rows = s.rows.next_multiple_of(4);
    }
    spec
}

proptest! {
    #![proptest_config(testing::config())]
    /// Every split of the rows among threads gives the reference result: 1, 2 or 4 rows per
    /// group, 1 to 32 threads per group, small and large workgroups, both variants.
    #[test]
    fn every_geometry_matches_reference(
        spec in pt::projection().prop_map(rows_by_four),
        rows in prop_oneof![Just(1u32), Just(2), Just(4)],
        tpr_log in 0u32..=5,
        wg_log in 0u32..=2,
        subgroups in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let gpu = if subgroups { testing::gpu() } else { testing::gpu_without_subgroups() };
        let auto = Geometry::of(gpu, &spec, 64);
        let cap = gpu.caps().subgroups.map_or(32, |sg| sg.min.min(32));
        let threads_per_row = (1u32 << tpr_log).min(cap);
        let workgroup = (64u32 << wg_log).max(threads_per_row);
        let g = Geometry { threads_per_row, rows, workgroup, ..auto };
        let mut rng = Rng::new(seed);
        let w = pt::weight(&spec, &mut rng);
        let d = pt::data(&spec, 1, &mut rng);
        let got = run_with(gpu, &spec, Matvec::with_geometry(gpu, &spec, g).unwrap(), &w, &d);
        pt::assert_matches(&format!("matvec {g:?} {spec:?}"), &got, &pt::expected(&spec, 1, &w, &d))?;
    }
}

/// The chunked formats' fast path (32-weight chunks, weight_chunks.wgsl) at its edges: rows of
/// 3 blocks (24 chunks of a 256-value format, 3 of a 32-value one), so that the two-chunk steps
/// of a row group end with one chunk left in some lanes and none in others; two segments (the
/// second's weights start mid-binding); odd row counts one row per group, even ones two rows
/// per group (one input load for both); 2, 8 or 16 threads per row; both variants; bytes to
/// floats by conversions or through the mantissa (`Geometry::magic_bytes`).
#[test]
fn chunked_formats_at_every_split() {
    let chunked = WeightFormat::ALL.into_iter().filter(|&f| super::is_chunked(f));
    for (i, format) in chunked.enumerate() {
        let b = format.block_elements() as u32;
        for (j, (rows, r)) in [((7u32, 5u32), 1u32), ((6, 4), 2)].into_iter().enumerate() {
            let spec = Projection::segmented(
                format,
                vec![Segment::new(rows.0, 3 * b).with_bias(), Segment::new(rows.1, b).input_at(3 * b)],
            )
            .residual();
            let threads_per_row = [2u32, 8, 16][(i + j) % 3];
            // Lavapipe's subgroups have 8 lanes: 16 threads per row run on the plain variant.
            let gpu = if threads_per_row <= 8 && j == 0 { testing::gpu() } else { testing::gpu_without_subgroups() };
            let auto = Geometry::of(gpu, &spec, 64);
            let magic_bytes = (i + j) % 2 == 1;
            let g = Geometry { threads_per_row, rows: r, workgroup: 64, magic_bytes, ..auto };
            assert!(g.vec, "{format:?}: whole blocks at aligned inputs take the fast path");
            let mut rng = Rng::new(i as u64);
            let w = pt::weight(&spec, &mut rng);
            let d = pt::data(&spec, 1, &mut rng);
            let got = run_with(gpu, &spec, Matvec::with_geometry(gpu, &spec, g).unwrap(), &w, &d);
            pt::assert_matches(&format!("matvec {g:?} {spec:?}"), &got, &pt::expected(&spec, 1, &w, &d)).unwrap();
        }
    }
}

#[test]
fn geometries_that_do_not_fit_are_errors() {
    let gpu = testing::gpu();
    let spec = Projection::new(formats::WeightFormat::F16, 6, 64);
    let auto = Geometry::of(gpu, &spec, 64);
    assert!(Matvec::with_geometry(gpu, &spec, Geometry { rows: 4, ..auto }).is_err(), "4 rows do not divide 6");
    assert!(Matvec::with_geometry(gpu, &spec, Geometry { rows: 3, ..auto }).is_err());
    assert!(Matvec::with_geometry(gpu, &spec, Geometry { threads_per_row: 3, ..auto }).is_err());
    assert!(Matvec::with_geometry(gpu, &spec, Geometry { workgroup: 4096, ..auto }).is_err());
    assert!(Matvec::with_geometry(gpu, &spec, Geometry { rows: 2, ..auto }).is_ok());
}

#[test]
fn real_model_shapes() {
    let c = 2560;
    for format in formats::WeightFormat::ALL {
        // r, k, v from the packed [6, C] token-shifted input (blocks 0, 2, 3).
        let rkv = Projection::segmented(
            format,
            vec![Segment::new(c, c), Segment::new(c, c).input_at(2 * c), Segment::new(c, c).input_at(3 * c)],
        );
        // Channel mix: key (C -> F, relu²) and value (F -> C, added into the residual stream).
        let key = Projection::new(format, 4 * c, c).activation(Activation::ReluSq);
        let value = Projection::new(format, c, 4 * c).residual();
        // The other formats (slow reference quantisers): the same row lengths and segments with
        // a slice of the rows.
        let specs = if pt::tested_everywhere(format) {
            vec![rkv, key, value]
        } else {
            let rkv = Projection::segmented(
                format,
                vec![Segment::new(32, c), Segment::new(32, c).input_at(2 * c), Segment::new(36, c).input_at(3 * c)],
            );
            vec![rkv, Projection::new(format, 40, 4 * c).residual()]
        };
        for (i, spec) in specs.iter().enumerate() {
            // Each shape once, on a different device each time.
            let (name, gpu) = devices()[(i + format.shader_id() as usize) % 3];
            check(gpu, spec, i as u64).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn tiny_shapes_on_every_device() {
    for format in formats::WeightFormat::ALL {
        for (name, gpu) in pt::devices_for(format) {
            let k = format.block_elements() as u32;
            // The last reads its input at an unaligned offset: element loads (no VEC).
            let unaligned = Projection::segmented(format, vec![Segment::new(5, k).input_at(3)]);
            for spec in
                [Projection::new(format, 1, k), Projection::new(format, 33, k).with_bias().residual(), unaligned]
            {
                check(gpu, &spec, 7).unwrap_or_else(|e| panic!("{name} {format:?}: {e}"));
            }
        }
    }
}

#[test]
fn row_blocks_are_dispatched_separately() {
    // A small matrix under an artificial binding limit: three row blocks.
    for format in formats::WeightFormat::ALL {
        for (name, gpu) in pt::devices_for(format) {
            let (rows, k) = (100u32, pt::whole_blocks(format, 64));
            let limit = format.gpu_words(k as usize) as u64 * 4 * 34 + 48; // 34 rows per block
            let blocks = formats::row_blocks(format, rows as usize, k as usize, limit).unwrap();
            assert_eq!(blocks.len(), 3, "{format:?}: {blocks:?}");
            let spec = Projection::new(format, rows, k)
                .activation(Activation::Sigmoid)
                .with_bias()
                .residual()
                .split(blocks.iter().map(|&b| b as u32).collect());
            check(gpu, &spec, 11).unwrap_or_else(|e| panic!("{name} {format:?}: {e}"));
        }
    }
}

/// The 2.9B head, 2560 x 65536, which needs three F16 row blocks (two in Q8_0) under the
/// 128 MiB binding limit. Weights are generated and checked in chunks of rows to keep the
/// host memory down.
fn head(gpu: &Gpu, format: formats::WeightFormat) {
    let (c, v) = (2560usize, 65536usize);
    // WebGPU's default binding limit (128 MiB) even where the device grants more (2 GiB on an
    // H100), so the split path runs everywhere.
    let limit = gpu.caps().limits.max_storage_buffer_binding_size.min(128 << 20);
    let blocks = formats::row_blocks(format, v, c, limit).unwrap();
    assert!(blocks.len() > 1, "the head should need several bindings under {limit} bytes");
    let spec = Projection::new(format, v as u32, c as u32).split(blocks.iter().map(|&b| b as u32).collect());
    let mut rng = Rng::new(29);
    let x = rng.vec(c, 1.0);
    let mut gguf = Vec::with_capacity(format.stored_bytes(v * c));
    let mut want = Vec::with_capacity(v);
    let chunk = 4096;
    for _ in 0..v / chunk {
        let vals: Vec<f32> = (0..chunk * c).map(|_| (rng.uniform() - 0.5) * 0.07).collect();
        let bytes = formats::encode(format, &vals).unwrap();
        let deq = formats::dequantize(format, &bytes).unwrap();
        want.extend(
            deq.chunks(c).map(|row| row.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32),
        );
        gguf.extend(bytes);
    }
    let parts: Vec<gpu_core::GpuBuffer> = crate::packing::pack_row_blocks(format, &gguf, c, &blocks)
        .unwrap()
        .iter()
        .map(|w| gpu.buffer_from("head block", w).unwrap())
        .collect();
    drop(gguf);
    let ranges: Vec<BufferRange<'_>> = parts.iter().map(|b| b.all()).collect();
    let mv = Matvec::new(gpu, &spec).unwrap();
    let xb = pt::upload_padded(gpu, &x);
    let y = testing::Guarded::new(gpu, v);
    let mut rec = gpu.recorder();
    mv.record(gpu, &mut rec, xb.all(), &ranges, None, y.range()).unwrap();
    assert_eq!(rec.stats().dispatches as usize, blocks.len());
    rec.submit();
    pt::assert_matches(&format!("head {format:?}"), &y.read(gpu), &want).unwrap();
}

#[test]
fn head_f16_in_row_blocks() {
    head(testing::gpu(), formats::WeightFormat::F16);
}

#[test]
fn head_q8_0_in_row_blocks() {
    head(testing::gpu_without_subgroups(), formats::WeightFormat::Q8_0);
}

#[test]
fn bad_shapes_and_bindings_are_errors() {
    let gpu = testing::gpu();
    let f32 = formats::WeightFormat::F32;
    assert!(Matvec::new(gpu, &Projection::new(formats::WeightFormat::Q8_0, 4, 48)).is_err());
    assert!(Matvec::new(gpu, &Projection::new(f32, 0, 4)).is_err());
    assert!(Matvec::new(gpu, &Projection::segmented(f32, vec![Segment::new(1, 4); 5])).is_err());
    assert!(Matvec::new(gpu, &Projection::segmented(f32, vec![Segment::new(1, 4); 2]).split(vec![1, 1])).is_err());
    assert!(Matvec::new(gpu, &Projection::new(f32, 4, 4).split(vec![1, 2])).is_err());

    let spec = Projection::new(f32, 8, 8).with_bias();
    let mv = Matvec::new(gpu, &spec).unwrap();
    let buf = |n: usize| gpu.buffer("test", n as u64 * 4).unwrap();
    let (x, w, b, y, small) = (buf(8), buf(64), buf(8), buf(8), buf(4));
    let mut rec = gpu.recorder();
    assert!(mv.record(gpu, &mut rec, x.all(), &[w.all()], Some(b.all()), y.all()).is_ok());
    assert!(mv.record(gpu, &mut rec, small.all(), &[w.all()], Some(b.all()), y.all()).is_err());
    assert!(mv.record(gpu, &mut rec, x.all(), &[small.all()], Some(b.all()), y.all()).is_err());
    assert!(mv.record(gpu, &mut rec, x.all(), &[w.all()], None, y.all()).is_err());
    assert!(mv.record(gpu, &mut rec, x.all(), &[w.all()], Some(b.all()), small.all()).is_err());
    assert!(mv.record(gpu, &mut rec, x.all(), &[w.all(), w.all()], Some(b.all()), y.all()).is_err());
    rec.submit();
}

#[test]
fn every_byte_value_decodes_exactly() {
    // Each block format, on one of the two variants (each pipeline is compiled once); the
    // chunked formats also with their bytes turned into floats through the mantissa.
    let blocked = WeightFormat::ALL.into_iter().filter(|f| f.block_elements() > 1);
    for (i, format) in blocked.enumerate() {
        let spec = Projection::new(format, 24, 2 * format.block_elements() as u32);
        let mut rng = Rng::new(7);
        let w = pt::every_byte_weight(&spec, &mut rng);
        let d = pt::data(&spec, 1, &mut rng);
        let gpu = [testing::gpu(), testing::gpu_without_subgroups()][i % 2];
        let auto = Geometry::of(gpu, &spec, 64);
        for magic_bytes in [false, true].into_iter().take(if super::is_chunked(format) { 2 } else { 1 }) {
            let mv = Matvec::with_geometry(gpu, &spec, Geometry { magic_bytes, ..auto }).unwrap();
            let got = run_with(gpu, &spec, mv, &w, &d);
            let what = format!("matvec every {format:?} byte (magic bytes: {magic_bytes})");
            pt::assert_matches(&what, &got, &pt::expected(&spec, 1, &w, &d)).unwrap();
        }
    }
}
