//! Conversions between raw tensor bytes and f32 for the plain and Q8_0 formats.
//!
//! Q8_0 (ggml `block_q8_0`): each row of `ne[0]` values (a multiple of 32) is split into blocks of 32; a
//! block is 34 bytes: the f16 scale `d`, then 32 signed bytes `q`; value = `d * q`.

use half::{bf16, f16};

use crate::types::GgmlType;

/// Values per Q8_0 block.
pub const Q8_0_BLOCK: usize = 32;
/// Bytes per Q8_0 block: f16 scale + 32 × i8.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// Decodes `data` (raw bytes of a tensor of type `ty`) to f32. Returns `None` for types without a decoder
/// here (everything but F32, F16, BF16 and Q8_0) or when the byte count is not a whole number of elements or
/// blocks.
pub fn to_f32(ty: GgmlType, data: &[u8]) -> Option<Vec<f32>> {
    match ty {
        GgmlType::F32 if data.len().is_multiple_of(4) => {
            Some(data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        }
        GgmlType::F16 if data.len().is_multiple_of(2) => {
            Some(data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect())
        }
        GgmlType::BF16 if data.len().is_multiple_of(2) => {
            Some(data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect())
        }
        GgmlType::Q8_0 if data.len().is_multiple_of(Q8_0_BLOCK_BYTES) => Some(dequantize_q8_0(data)),
        _ => None,
    }
}

/// Q8_0 blocks to f32 (`data.len()` must be a multiple of 34; a partial trailing block is ignored).
pub fn dequantize_q8_0(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() / Q8_0_BLOCK_BYTES * Q8_0_BLOCK);
    for block in data.chunks_exact(Q8_0_BLOCK_BYTES) {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        out.extend(block[2..].iter().map(|&q| d * f32::from(q as i8)));
    }
    out
}

/// f32 values to Q8_0 blocks exactly as ggml's reference quantizer (`quantize_row_q8_0_ref`) does:
/// `d = absmax / 127`, `q = round(x / d)` (ties away from zero), `d` stored as f16. `values.len()` must be
/// a multiple of 32; a partial trailing block is ignored.
pub fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / Q8_0_BLOCK * Q8_0_BLOCK_BYTES);
    for block in values.chunks_exact(Q8_0_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&x| (x * id).round() as i8 as u8));
    }
    out
}

/// f32 values to little-endian F32 bytes.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// f32 values to little-endian F16 bytes (round to nearest even).
pub fn f16_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_round_trip_matches_ggml_rule() {
        let values: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * (1 + i % 5) as f32).collect();
        let bytes = quantize_q8_0(&values);
        assert_eq!(bytes.len(), 2 * Q8_0_BLOCK_BYTES);
        let back = dequantize_q8_0(&bytes);
        for (block, chunk) in values.chunks(32).zip(back.chunks(32)) {
            let amax = block.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
            let d = f16::from_f32(amax / 127.0).to_f32();
            for (x, y) in block.iter().zip(chunk) {
                assert!((x - y).abs() <= d * 0.5 + amax * 1e-3, "{x} vs {y} (d = {d})");
            }
        }
        // The largest magnitude maps to ±127 exactly.
        let q0: Vec<i8> = bytes[2..34].iter().map(|&b| b as i8).collect();
        assert!(q0.iter().any(|&q| q == 127 || q == -127));
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let bytes = quantize_q8_0(&[0.0; 32]);
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn plain_conversions() {
        let v = [1.0f32, -2.5, 0.0, 65504.0];
        assert_eq!(to_f32(GgmlType::F32, &f32_bytes(&v)).unwrap(), v);
        assert_eq!(to_f32(GgmlType::F16, &f16_bytes(&v)).unwrap(), v);
        assert_eq!(to_f32(GgmlType::BF16, &[0x80, 0x3f]).unwrap(), [1.0]);
        assert_eq!(to_f32(GgmlType::F32, &[0; 3]), None);
        assert_eq!(to_f32(GgmlType::Q4_K, &[0; 144]), None);
    }
}
