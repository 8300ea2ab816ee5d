//! Scalar helpers shared by every format, each written to give exactly what ggml's C gives on x86-64.

use half::f16;

/// ggml's `nearest_int`: rounds to nearest, ties to even, through the float-add trick
/// (`fval + 1.5·2^23`, then the low mantissa bits). ggml asserts `|fval| <= 4194303` in debug builds; like
/// its release builds, larger inputs give what the trick gives.
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// C's float to `int` conversion as x86-64 compiles it (`cvttss2si`): truncation toward zero, and
/// `INT_MIN` for NaN or a value out of range. ggml narrows the result to `int8_t`/`uint8_t` by keeping the
/// low byte; callers do the same with `as i8`/`as u8`.
pub(crate) fn c_float_to_int(x: f32) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

/// The f16 at `bytes[at..at + 2]`, widened to f32 (`GGML_FP16_TO_FP32`).
pub(crate) fn read_f16(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Stores `value` as f16 at `bytes[at..at + 2]`, rounded to nearest even (`GGML_FP32_TO_FP16`).
pub(crate) fn write_f16(bytes: &mut [u8], at: usize, value: f32) {
    bytes[at..at + 2].copy_from_slice(&f16::from_f32(value).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (x, want) in [(0.5, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (3.49, 3), (-3.51, -4), (0.0, 0)] {
            assert_eq!(nearest_int(x), want, "nearest_int({x})");
        }
        for i in -100_000..100_000 {
            let x = i as f32 * 0.37;
            assert_eq!(nearest_int(x), x.round_ties_even() as i32, "nearest_int({x})");
        }
    }

    #[test]
    fn float_to_int_follows_x86() {
        assert_eq!(c_float_to_int(16.9), 16);
        assert_eq!(c_float_to_int(-0.7), 0);
        assert_eq!(c_float_to_int(f32::NAN), i32::MIN);
        assert_eq!(c_float_to_int(f32::INFINITY), i32::MIN);
        assert_eq!(c_float_to_int(-3e9), i32::MIN);
    }
}
