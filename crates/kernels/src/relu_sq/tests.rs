use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

fn check(gpu: &Gpu, n: usize, seed: u64) -> Result<(), TestCaseError> {
    let mut r = testing::Rng::new(seed);
    let x0 = r.vec(n, 3.0);
    let k = ReluSq::new(gpu).unwrap();
    let x = testing::Guarded::with_contents(gpu, &x0);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, n as u32, x.range()).unwrap();
    rec.submit();
    let mut want = x0;
    relu_sq(&mut want);
    testing::assert_close("relu_sq", &x.read(gpu), &want, Tolerance::F32_EXACTISH)
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(n in testing::widths(), seed in any::<u64>()) {
        check(testing::gpu(), n, seed)?;
    }
}

#[test]
fn model_sizes_under_default_limits() {
    for n in [10240, 4 * 10240 + 3] {
        check(testing::gpu_default_limits(), n, n as u64).unwrap();
    }
}
