//! The kernels' weight formats: how a matrix is stored (ggml's block encodings: F32, F16, BF16,
//! Q4_0 ... Q8_0, Q2_K ... Q6_K, IQ4_NL, IQ4_XS, as `ggml_quants` describes them), their GPU
//! layouts, and dequantisation and encoding through `ggml_quants` (for CPU references and test
//! weights). [`crate::packing`] builds the GPU layouts; `weights.wgsl` decodes them.
//!
//! GPU layouts (one `u32` buffer per matrix, or per row block of a split matrix):
//! - F32: the f32 bit patterns.
//! - F16, BF16: the raw halves, two per word (element `e` in word `e / 2`, low half for even `e`).
//! - Block formats: every block's *body* first, in flat block order (row-major), each a whole
//!   number of words; then, for the formats whose stored block is not a multiple of 4 bytes
//!   ([`WeightFormat::split_d`]: Q4_0, Q5_0, Q8_0, IQ4_NL with the f16 `d` first, Q3_K and Q6_K
//!   with it last), the blocks' `d` two per word (flat block `b` in half
//!   `2 * body_words + b`, low half for even `b`). The body is the stored block without that `d`;
//!   the other formats (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K, IQ4_XS) keep their blocks whole and have no
//!   `d` region, so their layout is the stored bytes. Q8_0 is thus every quant, then the scales.
//!   A block is `block_elements` values of one row, so K is a multiple of it (32 or 256).
//!
//! Every packed buffer is padded with zero words to a multiple of 16 bytes: the matrix kernels
//! read weights as `array<vec4<u32>>`. The layout is as large as the stored bytes (plus padding).

use ggml_quants::QuantFormat;

use crate::{KernelError, Result};

/// How a weight matrix is stored (ggml's encodings; [`WeightFormat::quant`]). The order of
/// [`WeightFormat::ALL`] is the shader id (`DTYPE_*` in weights.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum WeightFormat {
    F32,
    F16,
    Q8_0,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    IQ4_NL,
    IQ4_XS,
}

impl WeightFormat {
    /// Every format, in shader-id order.
    pub const ALL: [WeightFormat; 15] = [
        WeightFormat::F32,
        WeightFormat::F16,
        WeightFormat::Q8_0,
        WeightFormat::BF16,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q2_K,
        WeightFormat::Q3_K,
        WeightFormat::Q4_K,
        WeightFormat::Q5_K,
        WeightFormat::Q6_K,
        WeightFormat::IQ4_NL,
        WeightFormat::IQ4_XS,
    ];

    /// The ggml encoding (`ggml_quants` decodes and encodes it).
    pub fn quant(self) -> QuantFormat {
        match self {
            WeightFormat::F32 => QuantFormat::F32,
            WeightFormat::F16 => QuantFormat::F16,
            WeightFormat::Q8_0 => QuantFormat::Q8_0,
            WeightFormat::BF16 => QuantFormat::BF16,
            WeightFormat::Q4_0 => QuantFormat::Q4_0,
            WeightFormat::Q4_1 => QuantFormat::Q4_1,
            WeightFormat::Q5_0 => QuantFormat::Q5_0,
            WeightFormat::Q5_1 => QuantFormat::Q5_1,
            WeightFormat::Q2_K => QuantFormat::Q2_K,
            WeightFormat::Q3_K => QuantFormat::Q3_K,
            WeightFormat::Q4_K => QuantFormat::Q4_K,
            WeightFormat::Q5_K => QuantFormat::Q5_K,
            WeightFormat::Q6_K => QuantFormat::Q6_K,
            WeightFormat::IQ4_NL => QuantFormat::IQ4_NL,
            WeightFormat::IQ4_XS => QuantFormat::IQ4_XS,
        }
    }

    /// The weight format of a ggml encoding (every one `ggml_quants` knows).
    pub fn of_quant(q: QuantFormat) -> WeightFormat {
        Self::ALL.into_iter().find(|f| f.quant() == q).unwrap_or(WeightFormat::F32)
    }

    /// ggml's name (`"Q4_K"`, ...).
    pub fn name(self) -> &'static str {
        self.quant().name()
    }

    /// The `DTYPE` override value the WGSL kernels use (`DTYPE_*` in weights.wgsl).
    pub fn shader_id(self) -> u32 {
        Self::ALL.iter().position(|&f| f == self).unwrap_or(0) as u32
    }

    /// Values per block (1 for F32, F16 and BF16).
    pub fn block_elements(self) -> usize {
        self.quant().block_elements()
    }

    /// Bytes of one stored block.
    pub fn block_bytes(self) -> usize {
        self.quant().block_bytes()
    }

    /// For a block format whose stored block is not a multiple of 4 bytes: the byte offset in the
    /// block of the f16 `d` that the GPU layout moves to its `d` region.
    pub fn split_d(self) -> Option<usize> {
        match self {
            WeightFormat::Q4_0 | WeightFormat::Q5_0 | WeightFormat::Q8_0 | WeightFormat::IQ4_NL => Some(0),
            WeightFormat::Q3_K | WeightFormat::Q6_K => Some(self.block_bytes() - 2),
            _ => None,
        }
    }

    /// Whether the GPU layout has a `d` region after the bodies.
    pub fn has_d_region(self) -> bool {
        self.split_d().is_some()
    }

    /// Bytes of one block in the body region (the stored block, less a split-off `d`).
    pub fn body_bytes(self) -> usize {
        self.block_bytes() - if self.has_d_region() { 2 } else { 0 }
    }

    /// Fails unless rows of `k` values can be stored in this format (a whole number of blocks).
    pub fn check_row_len(self, k: usize) -> Result<()> {
        if k == 0 || !k.is_multiple_of(self.block_elements()) {
            return Err(KernelError::Shape {
                kernel: "formats",
                what: "row length K",
                found: k as u64,
                why: if k == 0 {
                    "rows must not be empty"
                } else if self.block_elements() == 32 {
                    "rows of this format must be a multiple of 32 values"
                } else {
                    "rows of this format must be a multiple of 256 values"
                },
            });
        }
        Ok(())
    }

    /// Bytes of `n` stored values (`n` a whole number of blocks).
    pub fn stored_bytes(self, n: usize) -> usize {
        n / self.block_elements() * self.block_bytes()
    }

    /// Words of the body region of `n` values: where the `d` region starts.
    pub fn body_words(self, n: usize) -> usize {
        (n / self.block_elements() * self.body_bytes()).div_ceil(4)
    }

    /// `u32` words of the GPU layout of `n` values (already padded to a multiple of 4 words).
    pub fn gpu_words(self, n: usize) -> usize {
        let d_words = if self.has_d_region() { (n / self.block_elements()).div_ceil(2) } else { 0 };
        (self.body_words(n) + d_words).next_multiple_of(4)
    }
}

fn shape_error(what: &'static str, found: usize, why: &'static str) -> KernelError {
    KernelError::Shape { kernel: "formats", what, found: found as u64, why }
}

/// Stored bytes of any format to f32 values, as `ggml_quants::dequantize` decodes them.
pub fn dequantize(format: WeightFormat, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(ggml_quants::dequantize_to_vec(format.quant(), bytes)?)
}

/// f32 values encoded as stored bytes of `format`, as `llama-quantize` encodes them without an
/// importance matrix (`ggml_quants::quantize`; round to nearest for F16 and BF16). Used to build
/// test weights and synthetic models.
pub fn encode(format: WeightFormat, values: &[f32]) -> Result<Vec<u8>> {
    Ok(ggml_quants::quantize_to_vec(format.quant(), values)?)
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
    fn layouts_are_as_large_as_the_stored_bytes() {
        for format in WeightFormat::ALL {
            for blocks in [1usize, 2, 3, 7, 64] {
                let n = blocks * format.block_elements();
                let words = format.gpu_words(n);
                assert_eq!(words % 4, 0, "{format:?}");
                assert_eq!(words, format.stored_bytes(n).div_ceil(16) * 4, "{format:?} {blocks} blocks");
                assert_eq!(format.body_bytes() % if format.block_elements() == 1 { 2 } else { 4 }, 0, "{format:?}");
            }
            assert_eq!(WeightFormat::of_quant(format.quant()), format);
            assert_eq!(WeightFormat::ALL[format.shader_id() as usize], format);
            assert_eq!(format.name(), format.quant().name());
        }
        assert_eq!(WeightFormat::ALL.len(), QuantFormat::ALL.len());
    }

    #[test]
    fn the_split_d_is_the_block_scale() {
        // Zeroing the `d` at split_d() zeroes the whole block; every other format keeps its
        // blocks whole (a multiple of 4 bytes).
        for format in WeightFormat::ALL.into_iter().filter(|f| f.block_elements() > 1) {
            let v = values(format.block_elements(), 1);
            let mut block = encode(format, &v).unwrap();
            match format.split_d() {
                None => assert_eq!(format.block_bytes() % 4, 0, "{format:?}"),
                Some(at) => {
                    assert_ne!(format.block_bytes() % 4, 0, "{format:?}");
                    assert!(dequantize(format, &block).unwrap().iter().any(|&x| x != 0.0), "{format:?}");
                    block[at..at + 2].fill(0);
                    assert!(dequantize(format, &block).unwrap().iter().all(|&x| x == 0.0), "{format:?}");
                }
            }
        }
    }

    #[test]
    fn codecs_are_ggml_quants() {
        for format in WeightFormat::ALL {
            let v = values(2 * format.block_elements(), 2);
            let bytes = encode(format, &v).unwrap();
            assert_eq!(bytes, ggml_quants::quantize_to_vec(format.quant(), &v).unwrap());
            assert_eq!(bytes.len(), format.stored_bytes(v.len()));
            assert_eq!(
                dequantize(format, &bytes).unwrap(),
                ggml_quants::dequantize_to_vec(format.quant(), &bytes).unwrap()
            );
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        for format in WeightFormat::ALL {
            assert!(format.check_row_len(0).is_err());
            let b = format.block_elements();
            assert!(format.check_row_len(b).is_ok());
            assert_eq!(format.check_row_len(b + 16).is_err(), b > 1, "{format:?}");
        }
        assert!(encode(WeightFormat::Q8_0, &[1.0; 33]).is_err());
        assert!(dequantize(WeightFormat::Q8_0, &[0u8; 35]).is_err());
        assert!(dequantize(WeightFormat::Q4_K, &[0u8; 143]).is_err());
        assert!(dequantize(WeightFormat::F32, &[0u8; 6]).is_err());
    }
}
