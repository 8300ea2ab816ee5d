use proptest::prelude::*;

use super::*;
use crate::testing::{self, Tolerance};

fn check(gpu: &Gpu, n: usize, seed: u64) -> Result<(), TestCaseError> {
    let mut r = testing::Rng::new(seed);
    let (x, y0) = (r.vec(n, 3.0), r.vec(n, 3.0));
    let k = Add::new(gpu).unwrap();
    let bx = testing::upload(gpu, &x);
    let y = testing::Guarded::with_contents(gpu, &y0);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, n as u32, bx.all(), y.range()).unwrap();
    rec.submit();
    let mut want = y0;
    add(&x, &mut want);
    testing::assert_close("add", &y.read(gpu), &want, Tolerance::F32_EXACTISH)
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
    for n in [2560, 10240, 300_000] {
        check(testing::gpu_default_limits(), n, n as u64).unwrap();
    }
}
