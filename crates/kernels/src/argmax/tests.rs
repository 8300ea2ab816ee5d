use proptest::prelude::*;

use super::*;
use crate::testing;

fn run(gpu: &Gpu, rows: usize, v: usize, x: &[f32]) -> Vec<u32> {
    let k = Argmax::new(gpu, v as u32).unwrap();
    let bx = testing::upload(gpu, x);
    let out = testing::Guarded::new(gpu, rows);
    let mut rec = gpu.recorder();
    k.record(gpu, &mut rec, rows as u32, bx.all(), out.range()).unwrap();
    rec.submit();
    out.read_u32(gpu)
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn matches_reference(rows in 1usize..4, v in testing::widths(), levels in 1u32..50, nan_every in 0usize..20,
                         seed in any::<u64>()) {
        // Few distinct levels force ties; some NaN and -inf sprinkled in.
        let mut r = testing::Rng::new(seed);
        let x: Vec<f32> = (0..rows * v)
            .map(|i| match r.next_u64() % 40 {
                0 => f32::NEG_INFINITY,
                _ if nan_every > 0 && i % nan_every == 0 => f32::NAN,
                k => (k as u32 % levels) as f32 - 20.0,
            })
            .collect();
        prop_assert_eq!(run(testing::gpu(), rows, v, &x), argmax(&x, v));
    }
}

#[test]
fn special_rows() {
    let gpu = testing::gpu();
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let rows: [&[f32]; 5] = [
        &[nan, nan, nan, nan],
        &[f32::NEG_INFINITY; 4],
        &[nan, 1.0, nan, 1.0],
        &[-inf, nan, inf, inf],
        &[3.0, 2.0, 3.0, nan],
    ];
    let x: Vec<f32> = rows.concat();
    assert_eq!(run(gpu, 5, 4, &x), vec![u32::MAX, 0, 1, 2, 0]);
    assert_eq!(argmax(&x, 4), vec![u32::MAX, 0, 1, 2, 0]);
}

#[test]
fn vocabulary_size_under_default_limits() {
    let mut r = testing::Rng::new(3);
    let mut x = r.vec(65536, 3.0);
    x[65535] = 100.0;
    x[40000] = 100.0;
    assert_eq!(run(testing::gpu_default_limits(), 1, 65536, &x), vec![40000]);
    x[3] = f32::NAN;
    x[7] = 101.0;
    assert_eq!(run(testing::gpu(), 1, 65536, &x), argmax(&x, 65536));
}
