use proptest::prelude::*;

use super::*;
use crate::formats;
use crate::testing::{self, Tolerance};

const EPS: f32 = 1e-5;

/// The GPU layout of `values` in `format` and the values it holds after rounding.
fn packed(format: WeightFormat, values: &[f32]) -> (Vec<u32>, Vec<f32>) {
    let bytes = formats::encode(format, values).unwrap();
    let words = crate::packing::pack_matrix(format, &bytes, 1, values.len()).unwrap();
    (words, formats::dequantize(format, &bytes).unwrap())
}

/// Embeds `tokens` on the GPU with the table split into parts of at most `max_binding` bytes
/// and checks every row against the reference (NaN rows for ids >= v).
fn check(
    gpu: &Gpu,
    format: WeightFormat,
    v: usize,
    c: usize,
    tokens: &[u32],
    max_binding: Option<u64>,
    seed: u64,
) -> Result<usize, TestCaseError> {
    let mut r = testing::Rng::new(seed);
    let offset = r.normal() * 5.0;
    let values: Vec<f32> = (0..v * c).map(|_| r.normal() + offset).collect();
    let (words, table) = packed(format, &values);
    let (w, b) = (r.vec(c, 1.0), r.vec(c, 0.5));
    let max = max_binding.unwrap_or(gpu.caps().limits.max_storage_buffer_binding_size);
    let k = Embedding::with_max_binding(gpu, format, v as u32, c as u32, EPS, max).unwrap();
    let bt = gpu.buffer_from("table", &words).unwrap();
    let btok = gpu.buffer_from("tokens", tokens).unwrap();
    let (bw, bb) = (testing::upload(gpu, &w), testing::upload(gpu, &b));
    let x = testing::Guarded::new(gpu, tokens.len() * c);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, tokens.len() as u32, btok.all(), bt.all(), bw.all(), bb.all(), x.range()).unwrap();
    rec.submit();
    let got = x.read(gpu);
    let want = embedding(tokens, &table, &w, &b, EPS);
    for (t, &id) in tokens.iter().enumerate() {
        let (g, wnt) = (&got[t * c..(t + 1) * c], &want[t * c..(t + 1) * c]);
        if id as usize >= v {
            prop_assert!(
                g.iter().all(|x| x.is_nan()),
                "row {t} (id {id} >= V {v}) is not all NaN: {:?}",
                &g[..c.min(4)]
            );
        } else {
            testing::assert_close(&format!("embedding {format:?} row {t} id {id}"), g, wnt, Tolerance::F32_REDUCTION)?;
        }
    }
    Ok(k.parts())
}

/// A binding limit that splits a table of `v` rows of `row_bytes` into parts of at least `m`
/// aligned blocks, and into at most 6 parts (each part compiles a pipeline: slow on lavapipe).
fn split_limit(gpu: &Gpu, v: u64, row_bytes: u64, m: u64) -> u64 {
    let align = gpu.caps().limits.min_storage_buffer_offset_alignment as u64;
    let mut g = (align, row_bytes);
    while g.1 != 0 {
        g = (g.1, g.0 % g.1);
    }
    let block_rows = align / g.0;
    row_bytes * block_rows * m.max(v.div_ceil(block_rows * 6))
}

fn format_strategy() -> impl Strategy<Value = WeightFormat> {
    proptest::sample::select(WeightFormat::ALL.to_vec())
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(format in format_strategy(), v in 1usize..300, c in testing::widths(),
                         ids in proptest::collection::vec(any::<u32>(), 1..6), bad in any::<bool>(),
                         split in 0u64..4, seed in any::<u64>()) {
        let c = c.next_multiple_of(format.block_elements());
        let mut tokens: Vec<u32> = ids.iter().map(|&i| i % v as u32).collect();
        if bad {
            tokens[0] = v as u32 + ids[0] % 3;
        }
        let row_bytes = (format.body_bytes() * c / format.block_elements()) as u64;
        let max = (split > 0).then(|| split_limit(testing::gpu(), v as u64, row_bytes, split + 1));
        check(testing::gpu(), format, v, c, &tokens, max, seed)?;
    }
}

#[test]
fn splits_into_parts() {
    let gpu = testing::gpu();
    // 300 rows of 64 F32 values in parts of 50 rows: 6 dispatches; tokens in first, middle, last.
    let parts = check(gpu, WeightFormat::F32, 300, 64, &[0, 299, 150, 7, 300, 49, 50], Some(50 * 256), 1).unwrap();
    assert_eq!(parts, 6);
    // Formats with a `d` region (bound apart) and without, blocks of 32 and 256.
    for (format, c) in
        [(WeightFormat::Q8_0, 64), (WeightFormat::Q6_K, 256), (WeightFormat::Q4_1, 64), (WeightFormat::IQ4_XS, 256)]
    {
        let row_bytes = (format.body_bytes() * c / format.block_elements()) as u64;
        let limit = split_limit(gpu, 300, row_bytes, 3);
        let parts = check(gpu, format, 300, c, &[299, 0, 1000, 131], Some(limit), 2).unwrap();
        assert!(parts > 1, "{format:?}");
    }
}

#[test]
fn model_sizes() {
    // A full 65536-token vocabulary (narrow rows), and real row widths under default limits.
    check(testing::gpu(), WeightFormat::Q8_0, 65536, 32, &[0, 65535, 12345, 65536], None, 3).unwrap();
    for format in WeightFormat::ALL {
        check(testing::gpu_default_limits(), format, 40, 2560, &[39, 0, 17], None, 4).unwrap();
    }
}

#[test]
fn rejects_bad_shapes() {
    let gpu = testing::gpu();
    assert!(Embedding::new(gpu, WeightFormat::Q8_0, 10, 48, EPS).is_err());
    assert!(Embedding::new(gpu, WeightFormat::Q4_K, 10, 128, EPS).is_err());
    assert!(Embedding::new(gpu, WeightFormat::F32, 0, 48, EPS).is_err());
    assert!(Embedding::with_max_binding(gpu, WeightFormat::F32, 10, 64, EPS, 100).is_err());
    let k = Embedding::new(gpu, WeightFormat::F32, 10, 8, EPS).unwrap();
    let small = gpu.buffer("small", 4 * 8).unwrap();
    let mut rec = gpu.recorder();
    assert!(k.record(gpu, &mut rec, 1, small.all(), small.all(), small.all(), small.all(), small.all()).is_err());
}
