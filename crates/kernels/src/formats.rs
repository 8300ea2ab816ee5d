//! The kernels' weight formats: how a matrix is stored (ggml's block encodings: F32, F16, Q8_0),
//! the GPU layouts described at the top of `common.wgsl`, ggml's reference Q8_0 quantiser, and
//! dequantisation (for CPU references). [`crate::packing`] builds the GPU layouts.
//!
//! GPU layouts (one `u32` buffer per matrix, or per row block of a split matrix):
//! - F32: the f32 bit patterns.
//! - F16: the raw IEEE halves, two per word (element `e` in word `e / 2`, low half for even `e`).
//! - Q8_0: every quant first (row-major, 4 signed bytes per word, little-endian), then the f16
//!   block scales two per word (flat block `b` in word `n_quant_words + b / 2`, low half for
//!   even `b`). A block is 32 values of one row, so `K % 32 == 0`.
//!
//! Every packed buffer is padded with zero words to a multiple of 16 bytes: the matrix kernels
//! read weights as `array<vec4<u32>>`.

use half::f16;

use crate::{KernelError, Result};

/// Values per Q8_0 block.
pub const Q8_0_BLOCK: usize = 32;
/// Bytes of one stored Q8_0 block: an f16 scale and 32 signed bytes.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// How a weight matrix is stored: little-endian f32, little-endian IEEE halves, or ggml's Q8_0
/// blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    F16,
    Q8_0,
}

impl WeightFormat {
    pub const ALL: [WeightFormat; 3] = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8_0];

    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "F32",
            WeightFormat::F16 => "F16",
            WeightFormat::Q8_0 => "Q8_0",
        }
    }

    /// The `DTYPE` override value the WGSL kernels use (`DTYPE_*` in common.wgsl).
    pub fn shader_id(self) -> u32 {
        match self {
            WeightFormat::F32 => 0,
            WeightFormat::F16 => 1,
            WeightFormat::Q8_0 => 2,
        }
    }

    /// Fails unless rows of `k` values can be stored in this format (Q8_0 needs `k % 32 == 0`).
    pub fn check_row_len(self, k: usize) -> Result<()> {
        if k == 0 || (self == WeightFormat::Q8_0 && !k.is_multiple_of(Q8_0_BLOCK)) {
            return Err(KernelError::Shape {
                kernel: "formats",
                what: "row length K",
                found: k as u64,
                why: if k == 0 { "rows must not be empty" } else { "Q8_0 rows must be a multiple of 32 values" },
            });
        }
        Ok(())
    }

    /// Bytes of `n` stored values (`n` a multiple of 32 for Q8_0).
    pub fn stored_bytes(self, n: usize) -> usize {
        match self {
            WeightFormat::F32 => 4 * n,
            WeightFormat::F16 => 2 * n,
            WeightFormat::Q8_0 => n / Q8_0_BLOCK * Q8_0_BLOCK_BYTES,
        }
    }

    /// `u32` words of the GPU layout of `n` values (already padded to a multiple of 4 words).
    pub fn gpu_words(self, n: usize) -> usize {
        let words = match self {
            WeightFormat::F32 => n,
            WeightFormat::F16 => n.div_ceil(2),
            WeightFormat::Q8_0 => q8_quant_words(n) + (n / Q8_0_BLOCK).div_ceil(2),
        };
        words.next_multiple_of(4)
    }
}

/// Words holding the quants of `n` Q8_0 values (where the scales start).
pub fn q8_quant_words(n: usize) -> usize {
    n.div_ceil(4)
}

fn shape_error(what: &'static str, found: usize, why: &'static str) -> KernelError {
    KernelError::Shape { kernel: "formats", what, found: found as u64, why }
}

/// ggml's reference Q8_0 quantiser (`quantize_row_q8_0_ref`): per block of 32 values
/// `d = absmax / 127` stored as f16, `q = round(x / d)` (computed as `x * (1 / d)` in f32).
pub fn quantize_q8_0(values: &[f32]) -> Result<Vec<u8>> {
    if !values.len().is_multiple_of(Q8_0_BLOCK) {
        return Err(shape_error("Q8_0 value count", values.len(), "must be a multiple of 32"));
    }
    let mut out = Vec::with_capacity(values.len() / Q8_0_BLOCK * Q8_0_BLOCK_BYTES);
    for block in values.chunks_exact(Q8_0_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        out.extend(block.iter().map(|&v| ((v * id).round() as i8) as u8));
    }
    Ok(out)
}

/// Stored bytes of any format to f32 values.
pub fn dequantize(format: WeightFormat, bytes: &[u8]) -> Result<Vec<f32>> {
    match format {
        WeightFormat::F32 => {
            if !bytes.len().is_multiple_of(4) {
                return Err(shape_error("F32 byte length", bytes.len(), "must be a multiple of 4"));
            }
            Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        WeightFormat::F16 => {
            if !bytes.len().is_multiple_of(2) {
                return Err(shape_error("F16 byte length", bytes.len(), "must be even"));
            }
            Ok(bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
        }
        WeightFormat::Q8_0 => {
            if !bytes.len().is_multiple_of(Q8_0_BLOCK_BYTES) {
                return Err(shape_error("Q8_0 byte length", bytes.len(), "must be a multiple of the 34-byte block"));
            }
            Ok(bytes
                .chunks_exact(Q8_0_BLOCK_BYTES)
                .flat_map(|block| {
                    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    block[2..].iter().map(move |&q| d * q as i8 as f32)
                })
                .collect())
        }
    }
}

/// f32 values encoded as stored bytes of `format` (quantising for Q8_0, rounding to nearest for
/// F16). Used to build test weights and synthetic models.
pub fn encode(format: WeightFormat, values: &[f32]) -> Result<Vec<u8>> {
    match format {
        WeightFormat::F32 => Ok(bytemuck::cast_slice(values).to_vec()),
        WeightFormat::F16 => Ok(values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect()),
        WeightFormat::Q8_0 => quantize_q8_0(values),
    }
}

/// Row counts of the blocks a `rows` x `k` matrix must be split into so that each block's GPU
/// layout fits in `max_binding` bytes (`gpu_core::RowSplit` with the format's bytes per row;
/// each block is packed on its own by `packing::pack_row_blocks`). One block when it all fits; an
/// error when a single row does not fit.
pub fn row_blocks(format: WeightFormat, rows: usize, k: usize, max_binding: u64) -> Result<Vec<usize>> {
    format.check_row_len(k)?;
    if format.gpu_words(rows * k) as u64 * 4 <= max_binding {
        return Ok(vec![rows]);
    }
    // Bytes per row, rounded up so that padding and the half-used last scale word always fit.
    let row_bytes = (format.gpu_words(k) as u64 * 4).max(1);
    let slack = 32u64;
    let split = gpu_core::RowSplit::new(rows as u64, row_bytes, max_binding.saturating_sub(slack), 1)
        .ok_or_else(|| shape_error("row length K", k, "a single row does not fit in one binding"))?;
    Ok(split.parts.iter().map(|&(_, n)| n as usize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::testing::Rng::new(seed).vec(n, 2.0)
    }

    #[test]
    fn q8_0_quantiser_follows_ggml() {
        let mut v = values(64, 3);
        v[5] = -9.0; // absmax of block 0
        v[32..].fill(0.0); // an all-zero block
        let bytes = quantize_q8_0(&v).unwrap();
        assert_eq!(bytes.len(), 68);
        let d = f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
        assert_eq!(d, f16::from_f32(9.0 / 127.0).to_f32());
        assert_eq!(bytes[2 + 5] as i8, -127);
        let back = dequantize(WeightFormat::Q8_0, &bytes).unwrap();
        for i in 0..32 {
            assert_eq!(bytes[2 + i] as i8, (v[i] * (1.0 / (9.0f32 / 127.0))).round() as i8);
            assert!((back[i] - v[i]).abs() <= 0.5 * d + 1e-3, "{i}: {} vs {}", back[i], v[i]);
        }
        assert_eq!(&bytes[34..36], &[0, 0]);
        assert!(back[32..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn f16_values_round_to_nearest_and_back() {
        let v = values(7, 2);
        let bytes = encode(WeightFormat::F16, &v).unwrap();
        assert_eq!(bytes.len(), WeightFormat::F16.stored_bytes(7));
        let back = dequantize(WeightFormat::F16, &bytes).unwrap();
        for (x, y) in v.iter().zip(&back) {
            assert_eq!(*y, f16::from_f32(*x).to_f32());
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(WeightFormat::Q8_0.check_row_len(33).is_err());
        assert!(WeightFormat::F32.check_row_len(0).is_err());
        assert!(WeightFormat::F16.check_row_len(33).is_ok());
        assert!(quantize_q8_0(&[1.0; 33]).is_err());
        assert!(dequantize(WeightFormat::Q8_0, &[0u8; 35]).is_err());
        assert!(dequantize(WeightFormat::F32, &[0u8; 6]).is_err());
    }
}
