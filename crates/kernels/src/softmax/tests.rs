use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

fn check(gpu: &Gpu, rows: usize, v: usize, x: &[f32]) -> Result<(), TestCaseError> {
    let k = Softmax::new(gpu, v as u32).unwrap();
    let bx = testing::upload(gpu, x);
    let y = testing::Guarded::new(gpu, rows * v);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, rows as u32, bx.all(), y.range()).unwrap();
    rec.submit();
    let got = y.read(gpu);
    testing::assert_close("softmax", &got, &softmax(x, v), Tolerance::SOFTMAX)?;
    for row in got.chunks(v) {
        let s: f64 = row.iter().map(|&p| p as f64).sum();
        prop_assert!((s - 1.0).abs() < 1e-4, "row sums to {s}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(rows in 1usize..4, v in testing::widths(), scale in 0.1f32..30.0, offset in -100.0f32..100.0,
                         seed in any::<u64>()) {
        let mut r = testing::Rng::new(seed);
        let x: Vec<f32> = (0..rows * v).map(|_| r.normal() * scale + offset).collect();
        check(testing::gpu(), rows, v, &x)?;
    }
}

#[test]
fn vocabulary_size_under_default_limits() {
    let mut r = testing::Rng::new(7);
    let x: Vec<f32> = (0..65536).map(|_| r.normal() * 3.0 + 1000.0).collect();
    check(testing::gpu_default_limits(), 1, 65536, &x).unwrap();
}
