//! Properties of `quantize` and `dequantize` for every format: quantizing then dequantizing stays within
//! a per-format bound relative to the block's largest magnitude, and lengths that are not whole blocks
//! are refused with a typed error.

use ggml_quants::{dequantize, dequantize_to_vec, quantize, quantize_to_vec, QuantError, QuantFormat};
use proptest::prelude::*;

/// The largest round-trip error allowed, as a fraction of the block's largest magnitude (of the
/// 256-value super-block for K-quants and IQ4_XS), while the block's f16 scales are normal numbers.
///
/// The 32-value formats follow from their step: Q8_0 half a step of amax/127; Q4_0 and Q5_0 one step
/// (amax/8, amax/16) on the side opposite the largest value, where the top level is one short; Q4_1 and
/// Q5_1 half a step of (max − min)/15 or /31; each with a little more for the f16 rounding of the scale.
/// The K-quants and IQ4 bounds are 1.25 times the worst case seen over 4,000 varied blocks each (Q2_K
/// 0.414, Q3_K 0.264, Q4_K 0.115, Q5_K 0.071, Q6_K 0.043, IQ4_NL 0.133, IQ4_XS 0.151). F32, F16 and
/// BF16 are checked per value instead (see `element_error_bound`).
fn block_error_bound(format: QuantFormat) -> f32 {
    use QuantFormat::*;
    match format {
        F32 | F16 | BF16 => 0.0,
        Q8_0 => 0.006,
        Q4_0 => 0.13,
        Q4_1 => 0.075,
        Q5_0 => 0.07,
        Q5_1 => 0.04,
        Q2_K => 0.52,
        Q3_K => 0.33,
        Q4_K => 0.145,
        Q5_K => 0.09,
        Q6_K => 0.055,
        IQ4_NL => 0.17,
        IQ4_XS => 0.19,
    }
}

/// The largest factor that multiplies an f16 scale in a decoded value (`d·q`, `d·sc·q`, plus the
/// min's `dmin·m`). A scale that is an f16 subnormal (below 2^-14, common for K-quant scales of small
/// weights) is rounded to a multiple of 2^-24, an error of up to 2^-25 that is not relative to the
/// block: a decoded value may move by this factor times 2^-25 more.
fn scale_multiplier(format: QuantFormat) -> f32 {
    use QuantFormat::*;
    match format {
        F32 | F16 | BF16 => 0.0,
        Q8_0 | IQ4_NL => 127.0,
        Q4_0 => 8.0,
        Q4_1 => 16.0,
        Q5_0 => 16.0,
        Q5_1 => 32.0,
        Q2_K => 15.0 * 3.0 + 15.0,
        Q3_K => 32.0 * 4.0,
        Q4_K => 63.0 * 15.0 + 63.0,
        Q5_K => 63.0 * 31.0 + 63.0,
        Q6_K => 128.0 * 32.0,
        IQ4_XS => 32.0 * 127.0,
    }
}

/// The per-value error bound of the element formats: exact for F32; half an ulp of the 11-bit (F16) or
/// 8-bit (BF16) significand, or half the smallest f16 subnormal.
fn element_error_bound(format: QuantFormat, x: f32) -> f32 {
    match format {
        QuantFormat::F32 => 0.0,
        QuantFormat::F16 => (x.abs() * 2f32.powi(-11)).max(2f32.powi(-25)),
        QuantFormat::BF16 => x.abs() * 2f32.powi(-8),
        _ => unreachable!("{format} is a block format"),
    }
}

/// Two blocks of `format`: uniform values in ±2^e (e from −10 to 9), sometimes with an outlier up to 20
/// times larger, sometimes all positive, sometimes with every other group of 16 a hundred times smaller.
fn values_for(format: QuantFormat) -> impl Strategy<Value = Vec<f32>> {
    let n = 2 * format.block_elements().max(32);
    (
        prop::collection::vec(-1.0f32..1.0, n),
        -10i32..10,
        prop::option::of((0..n, -20.0f32..20.0)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut v, exponent, outlier, positive, uneven)| {
            let scale = 2f32.powi(exponent);
            for (i, x) in v.iter_mut().enumerate() {
                *x *= scale;
                if positive {
                    *x = x.abs();
                }
                if uneven && (i / 16) % 2 == 0 {
                    *x *= 0.01;
                }
            }
            if let Some((i, o)) = outlier {
                v[i] = o * scale;
            }
            v
        })
}

fn format_and_values() -> impl Strategy<Value = (QuantFormat, Vec<f32>)> {
    prop::sample::select(QuantFormat::ALL.to_vec()).prop_flat_map(|f| (Just(f), values_for(f)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn round_trip_error_is_bounded((format, values) in format_and_values()) {
        let bytes = quantize_to_vec(format, &values).unwrap();
        prop_assert_eq!(bytes.len(), values.len() / format.block_elements() * format.block_bytes());
        let back = dequantize_to_vec(format, &bytes).unwrap();
        prop_assert_eq!(back.len(), values.len());
        if format.block_elements() == 1 {
            for (&x, &y) in values.iter().zip(&back) {
                prop_assert!((x - y).abs() <= element_error_bound(format, x), "{}: {} became {}", format, x, y);
            }
            return Ok(());
        }
        let n = format.block_elements();
        for (block, (xs, ys)) in values.chunks(n).zip(back.chunks(n)).enumerate() {
            let amax = xs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let worst = xs.iter().zip(ys).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            let bound = block_error_bound(format) * amax + scale_multiplier(format) * 2f32.powi(-25);
            prop_assert!(
                worst <= bound,
                "{}: block {} error {} exceeds {} (block max {})", format, block, worst, bound, amax
            );
        }
    }
}

#[test]
fn zero_blocks_round_trip_to_zero() {
    for format in QuantFormat::ALL {
        let zeros = vec![0.0f32; format.block_elements() * 3];
        let back = dequantize_to_vec(format, &quantize_to_vec(format, &zeros).unwrap()).unwrap();
        assert!(back.iter().all(|&v| v == 0.0), "{format}: {back:?}");
    }
}

#[test]
fn partial_blocks_are_refused() {
    for format in QuantFormat::ALL {
        let (elements, block_bytes) = (format.block_elements(), format.block_bytes());
        let bytes = vec![0u8; 2 * block_bytes + 1];
        let mut out = vec![0.0f32; 3 * elements];
        assert_eq!(
            dequantize(format, &bytes, &mut out),
            Err(QuantError::PartialBlockBytes { format, bytes: 2 * block_bytes + 1, block_bytes })
        );
        assert_eq!(
            dequantize(format, &bytes[..block_bytes], &mut out),
            Err(QuantError::OutputValues { format, bytes: block_bytes, expected: elements, found: 3 * elements })
        );
        if elements > 1 {
            let values = vec![0.0f32; elements + 1];
            let mut out = vec![0u8; 2 * block_bytes];
            assert_eq!(
                quantize(format, &values, &mut out),
                Err(QuantError::PartialBlockValues { format, values: elements + 1, block_elements: elements })
            );
            assert_eq!(
                quantize_to_vec(format, &values[..elements - 1]),
                Err(QuantError::PartialBlockValues { format, values: elements - 1, block_elements: elements })
            );
        }
        let values = vec![0.0f32; elements];
        let mut out = vec![0u8; 2 * block_bytes];
        assert_eq!(
            quantize(format, &values, &mut out),
            Err(QuantError::OutputBytes { format, values: elements, expected: block_bytes, found: 2 * block_bytes })
        );
        assert_eq!(dequantize_to_vec(format, &[]), Ok(vec![]));
    }
    let message = QuantError::PartialBlockBytes { format: QuantFormat::Q4_K, bytes: 145, block_bytes: 144 }.to_string();
    assert_eq!(message, "Q4_K: 145 bytes are not a whole number of 144-byte blocks");
}
