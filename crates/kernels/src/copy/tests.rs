use proptest::prelude::*;

use super::*;
use crate::testing;

/// Copies `words` words between random offsets and checks the whole destination: the copied
/// words moved, every other word kept its value.
fn check(gpu: &Gpu, src_word: u64, dst_word: u64, words: u64, seed: u64) -> Result<(), TestCaseError> {
    let mut r = testing::Rng::new(seed);
    let src: Vec<u32> = (0..src_word + words + 5).map(|_| r.next_u64() as u32).collect();
    let dst0: Vec<f32> = (0..dst_word + words + 7).map(|i| i as f32).collect();
    let k = Copy::new(gpu).unwrap();
    let bs = gpu.buffer_from("src", &src).unwrap();
    let dst = testing::Guarded::with_contents(gpu, &dst0);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, bs.all(), src_word, dst.range(), dst_word, words).unwrap();
    rec.submit();
    let mut want: Vec<u32> = dst0.iter().map(|v| v.to_bits()).collect();
    want[dst_word as usize..(dst_word + words) as usize]
        .copy_from_slice(&src[src_word as usize..(src_word + words) as usize]);
    prop_assert_eq!(dst.read_u32(gpu), want);
    Ok(())
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn copies_between_any_offsets(src_word in 0u64..300, dst_word in 0u64..300, words in 1u64..2000,
                                  seed in any::<u64>()) {
        check(testing::gpu(), src_word, dst_word, words, seed)?;
    }
}

#[test]
fn large_copy_under_default_limits() {
    check(testing::gpu_default_limits(), 64, 3, 1 << 20, 1).unwrap();
}

#[test]
fn rejects_out_of_range() {
    let gpu = testing::gpu();
    let k = Copy::new(gpu).unwrap();
    let b = gpu.buffer("b", 64).unwrap();
    let mut rec = gpu.recorder();
    assert!(k.record(gpu, &mut rec, b.all(), 10, b.all(), 0, 7).is_err());
    assert!(k.record(gpu, &mut rec, b.all(), 0, b.all(), 0, 0).is_err());
}
