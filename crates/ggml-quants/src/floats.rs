//! The element formats: F32 (little-endian), F16 (IEEE half, round to nearest even) and BF16 (the high
//! half of an f32, rounded as ggml's `ggml_compute_fp32_to_bf16` does). Each "block" is one value.

use half::f16;

pub(crate) fn dequantize_f32(bytes: &[u8], out: &mut [f32]) {
    out[0] = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
}

pub(crate) fn quantize_f32(values: &[f32], out: &mut [u8]) {
    out.copy_from_slice(&values[0].to_le_bytes());
}

pub(crate) fn dequantize_f16(bytes: &[u8], out: &mut [f32]) {
    out[0] = f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
}

pub(crate) fn quantize_f16(values: &[f32], out: &mut [u8]) {
    out.copy_from_slice(&f16::from_f32(values[0]).to_le_bytes());
}

pub(crate) fn dequantize_bf16(bytes: &[u8], out: &mut [f32]) {
    out[0] = f32::from_bits(u32::from(u16::from_le_bytes([bytes[0], bytes[1]])) << 16);
}

pub(crate) fn quantize_bf16(values: &[f32], out: &mut [u8]) {
    out.copy_from_slice(&fp32_to_bf16_bits(values[0]).to_le_bytes());
}

/// ggml's `ggml_compute_fp32_to_bf16`: a NaN keeps its sign and high mantissa bits and is forced quiet;
/// every other value is rounded to nearest, ties to even (overflowing to infinity).
fn fp32_to_bf16_bits(value: f32) -> u16 {
    let bits = value.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return ((bits >> 16) | 64) as u16;
    }
    (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        assert_eq!(fp32_to_bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: it goes up.
        assert_eq!(fp32_to_bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(fp32_to_bf16_bits(1.0 + 1.5 / 256.0), 0x3f81);
        assert_eq!(fp32_to_bf16_bits(-2.0), 0xc000);
        assert_eq!(fp32_to_bf16_bits(f32::MAX), 0x7f80);
        assert_eq!(fp32_to_bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(fp32_to_bf16_bits(f32::from_bits(0xff81_2345)), 0xffc1);
    }
}
