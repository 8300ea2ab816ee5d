use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

fn run(gpu: &Gpu, rows: usize, c: usize, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let ln = LayerNorm::new(gpu, c as u32, 1e-5).unwrap();
    let (bx, bw, bb) = (testing::upload(gpu, x), testing::upload(gpu, w), testing::upload(gpu, b));
    let out = testing::Guarded::new(gpu, rows * c);
    let mut rec = gpu.recorder();
    ln.record(gpu, &mut rec, rows as u32, bx.all(), bw.all(), bb.all(), out.range()).unwrap();
    rec.submit();
    out.read(gpu)
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(rows in 1usize..5, c in testing::widths(), seed in any::<u64>(), offset in -50.0f32..50.0) {
        let mut r = testing::Rng::new(seed);
        let x: Vec<f32> = (0..rows * c).map(|_| r.normal() * 3.0 + offset).collect();
        let w = r.vec(c, 1.0);
        let b = r.vec(c, 0.5);
        let got = run(testing::gpu(), rows, c, &x, &w, &b);
        testing::assert_close("layer_norm", &got, &layer_norm(&x, &w, &b, 1e-5), Tolerance::F32_REDUCTION)?;
    }
}

#[test]
fn model_sizes_under_default_limits() {
    for c in [768usize, 2560, 4096] {
        let mut r = testing::Rng::new(c as u64);
        let x = r.vec(2 * c, 2.0);
        let (w, b) = (r.vec(c, 1.0), r.vec(c, 1.0));
        let got = run(testing::gpu_default_limits(), 2, c, &x, &w, &b);
        testing::assert_close("layer_norm", &got, &layer_norm(&x, &w, &b, 1e-5), Tolerance::F32_REDUCTION).unwrap();
    }
}
