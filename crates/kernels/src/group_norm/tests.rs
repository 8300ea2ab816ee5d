use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

fn check(gpu: &Gpu, rows: usize, h: usize, n: usize, seed: u64) -> Result<(), TestCaseError> {
    let c = h * n;
    let mut r = testing::Rng::new(seed);
    let x: Vec<f32> = (0..rows * c).map(|i| r.normal() * 4.0 + (i / n % 7) as f32 * 3.0).collect();
    let (w, b) = (r.vec(c, 1.0), r.vec(c, 0.5));
    let k = GroupNorm::new(gpu, c as u32, n as u32, RWKV7_GROUP_NORM_EPS).unwrap();
    let (bx, bw, bb) = (testing::upload(gpu, &x), testing::upload(gpu, &w), testing::upload(gpu, &b));
    let y = testing::Guarded::new(gpu, rows * c);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, rows as u32, bx.all(), bw.all(), bb.all(), y.range()).unwrap();
    rec.submit();
    let want = group_norm(&x, &w, &b, n, RWKV7_GROUP_NORM_EPS);
    testing::assert_close("group_norm", &y.read(gpu), &want, Tolerance::F32_REDUCTION)
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(rows in 1usize..5, h in 1usize..6, n in prop_oneof![Just(1usize), Just(64), 1usize..300],
                         seed in any::<u64>()) {
        check(testing::gpu(), rows, h, n, seed)?;
    }
}

#[test]
fn model_size_under_default_limits() {
    check(testing::gpu_default_limits(), 3, 40, 64, 1).unwrap();
}

#[test]
fn rejects_bad_shapes() {
    let gpu = testing::gpu();
    assert!(GroupNorm::new(gpu, 100, 64, RWKV7_GROUP_NORM_EPS).is_err());
    assert!(GroupNorm::new(gpu, 128, 0, RWKV7_GROUP_NORM_EPS).is_err());
}
