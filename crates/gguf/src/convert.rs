//! Conversions between raw tensor bytes and f32 for the plain and Q8_0 formats. (Encoding to the quantized
//! formats is `ggml-quants`' job.)
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
    fn q8_0_blocks_decode_as_scale_times_quant() {
        // Two hand-built blocks: scales 0.5 and -2 (exact in f16), quants -128..=127 in steps.
        let mut bytes = Vec::new();
        for (scale, first) in [(0.5f32, -128i32), (-2.0, 96)] {
            bytes.extend_from_slice(&f16::from_f32(scale).to_le_bytes());
            bytes.extend((0..32).map(|i| (first + 7 * i) as i8 as u8));
        }
        let values = dequantize_q8_0(&bytes);
        assert_eq!(values.len(), 64);
        for (i, v) in values.iter().enumerate() {
            let (scale, first) = if i < 32 { (0.5f32, -128i32) } else { (-2.0, 96) };
            let q = (first + 7 * (i as i32 % 32)) as i8;
            assert_eq!(*v, scale * f32::from(q), "value {i}");
        }
        assert_eq!(to_f32(GgmlType::Q8_0, &bytes).unwrap(), values);
        assert_eq!(to_f32(GgmlType::Q8_0, &bytes[..67]), None);
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
