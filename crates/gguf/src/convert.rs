//! f32 values to the raw bytes of F32 and F16 tensors, for writing files. (Decoding and the quantized
//! formats are `ggml-quants`' job.)

use half::f16;

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
    fn plain_conversions() {
        let v = [1.0f32, -2.5, 0.0, 65504.0];
        let f32s: Vec<f32> = f32_bytes(&v).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(f32s, v);
        let f16s: Vec<f32> = f16_bytes(&v).chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        assert_eq!(f16s, v);
        assert_eq!(f16_bytes(&[1.0 / 3.0]), f16::from_f32(1.0 / 3.0).to_le_bytes());
    }
}
