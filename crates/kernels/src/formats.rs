//! Weight formats on the CPU side: GGUF tensor bytes to the GPU layouts described at the top of
//! `common.wgsl`, ggml's reference Q8_0 quantiser, and dequantisation (for CPU references).
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

use crate::packing::Packing;
use crate::{KernelError, Result};

/// Values per Q8_0 block.
pub const Q8_0_BLOCK: usize = 32;
/// Bytes of one Q8_0 block in a GGUF file: an f16 scale and 32 signed bytes.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// How a weight matrix is stored (GGUF types 0, 1 and 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    F16,
    Q8_0,
}

impl WeightFormat {
    pub const ALL: [WeightFormat; 3] = [WeightFormat::F32, WeightFormat::F16, WeightFormat::Q8_0];

    /// The ggml type id.
    pub fn ggml_type(self) -> u32 {
        match self {
            WeightFormat::F32 => 0,
            WeightFormat::F16 => 1,
            WeightFormat::Q8_0 => 8,
        }
    }

    pub fn from_ggml_type(id: u32) -> Option<Self> {
        match id {
            0 => Some(WeightFormat::F32),
            1 => Some(WeightFormat::F16),
            8 => Some(WeightFormat::Q8_0),
            _ => None,
        }
    }

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

    /// Bytes of `n` values in a GGUF file (`n` a multiple of 32 for Q8_0).
    pub fn gguf_bytes(self, n: usize) -> usize {
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

fn pad16(mut words: Vec<u32>) -> Vec<u32> {
    words.resize(words.len().next_multiple_of(4), 0);
    words
}

fn shape_error(what: &'static str, found: usize, why: &'static str) -> KernelError {
    KernelError::Shape { kernel: "formats", what, found: found as u64, why }
}

/// F32 values as GPU words (bit patterns), padded to a multiple of 16 bytes.
pub fn pack_f32(values: &[f32]) -> Vec<u32> {
    pad16(values.iter().map(|v| v.to_bits()).collect())
}

/// Raw little-endian F16 bytes from a GGUF file as GPU words (two halves per word, low half
/// first), padded with zeros to a multiple of 16 bytes.
pub fn pack_f16_bytes(bytes: &[u8]) -> Vec<u32> {
    pad16(
        bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect(),
    )
}

/// Splits GGUF Q8_0 blocks into their quant bytes and scale bits.
fn split_q8_0(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u16>)> {
    if !bytes.len().is_multiple_of(Q8_0_BLOCK_BYTES) {
        return Err(shape_error("Q8_0 byte length", bytes.len(), "must be a multiple of the 34-byte block"));
    }
    let blocks = bytes.len() / Q8_0_BLOCK_BYTES;
    let mut quants = Vec::with_capacity(blocks * Q8_0_BLOCK);
    let mut scales = Vec::with_capacity(blocks);
    for block in bytes.chunks_exact(Q8_0_BLOCK_BYTES) {
        scales.push(u16::from_le_bytes([block[0], block[1]]));
        quants.extend_from_slice(&block[2..]);
    }
    Ok((quants, scales))
}

fn pack_q8_parts(quants: &[u8], scales: &[u16]) -> Vec<u32> {
    let mut words = Vec::with_capacity(WeightFormat::Q8_0.gpu_words(quants.len()));
    words.extend(quants.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    words.extend(scales.chunks(2).map(|c| c[0] as u32 | (*c.get(1).unwrap_or(&0) as u32) << 16));
    pad16(words)
}

/// GGUF Q8_0 blocks of a `rows` x `k` matrix as the GPU layout (quants, then scales).
pub fn repack_q8_0(bytes: &[u8], rows: usize, k: usize) -> Result<Vec<u32>> {
    WeightFormat::Q8_0.check_row_len(k)?;
    let expected = WeightFormat::Q8_0.gguf_bytes(rows * k);
    if bytes.len() != expected {
        return Err(shape_error("Q8_0 byte length", bytes.len(), "does not match rows x K"));
    }
    let (quants, scales) = split_q8_0(bytes)?;
    Ok(pack_q8_parts(&quants, &scales))
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

/// GGUF tensor bytes of any supported format to f32 values.
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
            let (quants, scales) = split_q8_0(bytes)?;
            Ok(quants
                .iter()
                .enumerate()
                .map(|(i, &q)| f16::from_bits(scales[i / Q8_0_BLOCK]).to_f32() * q as i8 as f32)
                .collect())
        }
    }
}

/// f32 values encoded as GGUF tensor bytes of `format` (quantising for Q8_0, rounding to
/// nearest for F16). Used to build test weights and by tools that write GGUF files.
pub fn encode(format: WeightFormat, values: &[f32]) -> Result<Vec<u8>> {
    match format {
        WeightFormat::F32 => Ok(bytemuck::cast_slice(values).to_vec()),
        WeightFormat::F16 => Ok(values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect()),
        WeightFormat::Q8_0 => quantize_q8_0(values),
    }
}

/// One matrix of a packed weight: its GGUF bytes, `rows` rows of `k` values.
#[derive(Clone, Copy, Debug)]
pub struct MatrixBytes<'a> {
    pub bytes: &'a [u8],
    pub rows: usize,
    pub k: usize,
}

/// The GPU layout of one or more matrices of the same format stacked by rows (the packed
/// weight of a segmented projection, e.g. W_r|W_k|W_v or the four LoRA A matrices). The
/// matrices may have different row lengths; for Q8_0 all quants come first, then all scales,
/// in the same order. [`Packing`] writes the same layout in place, a range at a time.
pub fn pack_matrices(format: WeightFormat, matrices: &[MatrixBytes<'_>]) -> Result<Vec<u32>> {
    Packing::new(format, matrices)?.to_words()
}

/// The GPU layout of one matrix.
pub fn pack_matrix(format: WeightFormat, bytes: &[u8], rows: usize, k: usize) -> Result<Vec<u32>> {
    pack_matrices(format, &[MatrixBytes { bytes, rows, k }])
}

/// Row counts of the blocks a `rows` x `k` matrix must be split into so that each block's GPU
/// layout fits in `max_binding` bytes (`gpu_core::RowSplit` with the format's bytes per row;
/// each block is packed on its own by [`pack_row_blocks`]). One block when it all fits; an
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

/// The GPU layouts of consecutive row blocks of one matrix (`blocks` from [`row_blocks`]).
pub fn pack_row_blocks(format: WeightFormat, bytes: &[u8], k: usize, blocks: &[usize]) -> Result<Vec<Vec<u32>>> {
    let rows = blocks.iter().sum();
    let matrix = crate::packing::SourceMatrix { format, bytes, rows, k };
    crate::packing::row_block_packings(format, matrix, blocks)?.iter().map(Packing::to_words).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::testing::Rng::new(seed).vec(n, 2.0)
    }

    #[test]
    fn f32_words_are_bit_patterns_padded_to_16_bytes() {
        let v = values(5, 1);
        let w = pack_f32(&v);
        assert_eq!(w.len(), 8);
        for i in 0..5 {
            assert_eq!(f32::from_bits(w[i]), v[i]);
        }
        assert!(w[5..].iter().all(|&x| x == 0));
        assert_eq!(w.len(), WeightFormat::F32.gpu_words(5));
    }

    #[test]
    fn f16_element_e_is_in_word_e_over_2_low_half_first() {
        let v = values(7, 2);
        let bytes = encode(WeightFormat::F16, &v).unwrap();
        let w = pack_f16_bytes(&bytes);
        assert_eq!(w.len(), WeightFormat::F16.gpu_words(7));
        for (e, &x) in v.iter().enumerate() {
            let half = if e % 2 == 0 { w[e / 2] & 0xffff } else { w[e / 2] >> 16 };
            assert_eq!(f16::from_bits(half as u16), f16::from_f32(x));
        }
        assert_eq!(dequantize(WeightFormat::F16, &bytes).unwrap()[3], f16::from_f32(v[3]).to_f32());
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
    fn q8_0_repack_puts_quants_then_scales() {
        let (rows, k) = (3, 64); // 6 blocks: 48 quant words then 3 scale words
        let v = values(rows * k, 4);
        let bytes = quantize_q8_0(&v).unwrap();
        let w = repack_q8_0(&bytes, rows, k).unwrap();
        assert_eq!(w.len(), WeightFormat::Q8_0.gpu_words(rows * k));
        let nq = q8_quant_words(rows * k);
        assert_eq!(nq, 48);
        for e in 0..rows * k {
            let b = e / 32;
            assert_eq!((w[e / 4] >> (8 * (e % 4))) as u8, bytes[b * 34 + 2 + e % 32], "quant {e}");
        }
        for b in 0..rows * k / 32 {
            let half = if b % 2 == 0 { w[nq + b / 2] & 0xffff } else { w[nq + b / 2] >> 16 };
            assert_eq!(half as u16, u16::from_le_bytes([bytes[b * 34], bytes[b * 34 + 1]]), "scale {b}");
        }
    }

    #[test]
    fn packed_matrices_keep_the_flat_order() {
        // Two Q8_0 matrices with different row lengths (3 blocks, then 2 blocks).
        let (a, b) = (values(96, 5), values(2 * 32, 6));
        let (qa, qb) = (quantize_q8_0(&a).unwrap(), quantize_q8_0(&b).unwrap());
        let packed = pack_matrices(
            WeightFormat::Q8_0,
            &[MatrixBytes { bytes: &qa, rows: 1, k: 96 }, MatrixBytes { bytes: &qb, rows: 2, k: 32 }],
        )
        .unwrap();
        let mut both = qa.clone();
        both.extend_from_slice(&qb);
        assert_eq!(packed, repack_q8_0(&both, 5, 32).unwrap());
        let fa = encode(WeightFormat::F16, &a).unwrap();
        let fb = encode(WeightFormat::F16, &b).unwrap();
        let p16 = pack_matrices(
            WeightFormat::F16,
            &[MatrixBytes { bytes: &fa, rows: 3, k: 32 }, MatrixBytes { bytes: &fb, rows: 1, k: 64 }],
        )
        .unwrap();
        assert_eq!(p16, pack_f16_bytes(&[fa, fb].concat()));
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(WeightFormat::Q8_0.check_row_len(33).is_err());
        assert!(WeightFormat::F32.check_row_len(0).is_err());
        assert!(WeightFormat::F16.check_row_len(33).is_ok());
        assert!(quantize_q8_0(&[1.0; 33]).is_err());
        assert!(repack_q8_0(&[0u8; 34], 1, 33).is_err());
        assert!(repack_q8_0(&[0u8; 34], 2, 32).is_err());
        assert!(dequantize(WeightFormat::Q8_0, &[0u8; 35]).is_err());
        assert!(dequantize(WeightFormat::F32, &[0u8; 6]).is_err());
        assert!(pack_matrix(WeightFormat::F16, &[0u8; 6], 2, 2).is_err());
    }

    #[test]
    fn row_blocks_fit_the_binding_and_cover_every_row() {
        for format in WeightFormat::ALL {
            let (rows, k) = (1000, 96);
            let max = 40_000u64;
            let blocks = row_blocks(format, rows, k, max).unwrap();
            assert_eq!(blocks.iter().sum::<usize>(), rows);
            assert!(blocks.len() > 1);
            let bytes = encode(format, &values(rows * k, 7)).unwrap();
            let parts = pack_row_blocks(format, &bytes, k, &blocks).unwrap();
            let mut flat = Vec::new();
            for (part, &n) in parts.iter().zip(&blocks) {
                assert!(part.len() as u64 * 4 <= max, "{format:?}: {} bytes", part.len() * 4);
                assert_eq!(part.len(), format.gpu_words(n * k));
                flat.extend(dequantize_gpu(format, part, n * k));
            }
            assert_eq!(flat, dequantize(format, &bytes).unwrap());
            assert_eq!(row_blocks(format, rows, k, 1 << 30).unwrap(), vec![rows]);
            assert!(row_blocks(format, rows, k, 64).is_err());
        }
    }

    /// Decodes a GPU layout back to values (the inverse of the packers, for the tests).
    fn dequantize_gpu(format: WeightFormat, words: &[u32], n: usize) -> Vec<f32> {
        let half = |i: usize| f16::from_bits((words[i / 2] >> (16 * (i % 2))) as u16).to_f32();
        match format {
            WeightFormat::F32 => words[..n].iter().map(|&w| f32::from_bits(w)).collect(),
            WeightFormat::F16 => (0..n).map(half).collect(),
            WeightFormat::Q8_0 => {
                let nq = q8_quant_words(n);
                (0..n)
                    .map(|e| {
                        let q = (words[e / 4] >> (8 * (e % 4))) as u8 as i8 as f32;
                        let b = e / 32;
                        let d = f16::from_bits((words[nq + b / 2] >> (16 * (b % 2))) as u16).to_f32();
                        d * q
                    })
                    .collect()
            }
        }
    }
}
