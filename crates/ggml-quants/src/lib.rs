//! ggml's block formats in Rust: the element formats F32, F16 and BF16, the 32-value formats Q4_0, Q4_1,
//! Q5_0, Q5_1 and Q8_0, the 256-value K-quants Q2_K to Q6_K, and the non-linear IQ4_NL and IQ4_XS.
//!
//! [`dequantize`] decodes whole blocks to f32 exactly as ggml's `dequantize_row_*` do (and gguf-py's
//! `gguf.quants.dequantize`, which computes the same products in the same order). [`quantize`] encodes
//! f32 values exactly as `llama-quantize` does without an importance matrix: ggml's reference
//! quantizers (`quantize_row_*_ref`) for the 32-value formats and the K-quants, `quantize_iq4_nl` /
//! `quantize_iq4_xs` with no quantization weights for the IQ4 formats, ggml's rounding for BF16, and
//! round-to-nearest-even for F16. The ports keep ggml's order of float operations, so the bytes are the
//! same as ggml's; `docs/gguf.md` says how that is tested.
//!
//! The crate knows nothing of files: a tensor's bytes are its blocks one after another, and a block is
//! independent of its neighbours and of the row it is in.

mod floats;
mod iq4;
mod kquant_high;
mod kquant_low;
mod kquant_search;
mod legacy;
mod scalar;

use std::fmt;

use thiserror::Error;

/// A ggml storage format this crate can read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QuantFormat {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    IQ4_NL,
    IQ4_XS,
}

/// (format, ggml name, ggml type id, elements per block, bytes per block).
const GEOMETRY: [(QuantFormat, &str, u32, usize, usize); 15] = [
    (QuantFormat::F32, "F32", 0, 1, 4),
    (QuantFormat::F16, "F16", 1, 1, 2),
    (QuantFormat::BF16, "BF16", 30, 1, 2),
    (QuantFormat::Q4_0, "Q4_0", 2, 32, 18),
    (QuantFormat::Q4_1, "Q4_1", 3, 32, 20),
    (QuantFormat::Q5_0, "Q5_0", 6, 32, 22),
    (QuantFormat::Q5_1, "Q5_1", 7, 32, 24),
    (QuantFormat::Q8_0, "Q8_0", 8, 32, 34),
    (QuantFormat::Q2_K, "Q2_K", 10, 256, 84),
    (QuantFormat::Q3_K, "Q3_K", 11, 256, 110),
    (QuantFormat::Q4_K, "Q4_K", 12, 256, 144),
    (QuantFormat::Q5_K, "Q5_K", 13, 256, 176),
    (QuantFormat::Q6_K, "Q6_K", 14, 256, 210),
    (QuantFormat::IQ4_NL, "IQ4_NL", 20, 32, 18),
    (QuantFormat::IQ4_XS, "IQ4_XS", 23, 256, 136),
];

impl QuantFormat {
    /// Every format, in the order of [`GEOMETRY`]: element formats, 32-value formats, K-quants, IQ4.
    pub const ALL: [QuantFormat; 15] = {
        let mut all = [QuantFormat::F32; 15];
        let mut i = 0;
        while i < GEOMETRY.len() {
            all[i] = GEOMETRY[i].0;
            i += 1;
        }
        all
    };

    fn geometry(self) -> &'static (QuantFormat, &'static str, u32, usize, usize) {
        // ALL and GEOMETRY list the same formats in the same order.
        &GEOMETRY[Self::ALL.iter().position(|&f| f == self).unwrap_or(0)]
    }

    /// ggml's name for the format (`"Q4_K"`, `"IQ4_XS"`, ...).
    pub fn name(self) -> &'static str {
        self.geometry().1
    }

    /// The format with this ggml name (case-insensitive), if this crate handles it.
    pub fn from_name(name: &str) -> Option<QuantFormat> {
        GEOMETRY.iter().find(|g| g.1.eq_ignore_ascii_case(name)).map(|g| g.0)
    }

    /// The `enum ggml_type` value that GGUF tensor infos store for this format.
    pub fn ggml_type_id(self) -> u32 {
        self.geometry().2
    }

    /// The format with this ggml type id, if this crate handles it.
    pub fn from_ggml_type_id(id: u32) -> Option<QuantFormat> {
        GEOMETRY.iter().find(|g| g.2 == id).map(|g| g.0)
    }

    /// Values per block (1 for the element formats).
    pub fn block_elements(self) -> usize {
        self.geometry().3
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        self.geometry().4
    }

    /// Bytes that `values` values take, or why they cannot be stored (not a whole number of blocks).
    pub fn bytes_for(self, values: usize) -> Result<usize, QuantError> {
        if !values.is_multiple_of(self.block_elements()) {
            return Err(QuantError::PartialBlockValues { format: self, values, block_elements: self.block_elements() });
        }
        Ok(values / self.block_elements() * self.block_bytes())
    }

    /// Values that `bytes` bytes hold, or why they are not whole blocks.
    pub fn values_in(self, bytes: usize) -> Result<usize, QuantError> {
        if !bytes.is_multiple_of(self.block_bytes()) {
            return Err(QuantError::PartialBlockBytes { format: self, bytes, block_bytes: self.block_bytes() });
        }
        Ok(bytes / self.block_bytes() * self.block_elements())
    }
}

impl fmt::Display for QuantFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a buffer cannot be decoded or encoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum QuantError {
    #[error("{format}: {bytes} bytes are not a whole number of {block_bytes}-byte blocks")]
    PartialBlockBytes { format: QuantFormat, bytes: usize, block_bytes: usize },
    #[error("{format}: {values} values are not a whole number of {block_elements}-value blocks")]
    PartialBlockValues { format: QuantFormat, values: usize, block_elements: usize },
    #[error("{format}: the output holds {found} values, the {bytes} input bytes decode to {expected}")]
    OutputValues { format: QuantFormat, bytes: usize, expected: usize, found: usize },
    #[error("{format}: the output holds {found} bytes, the {values} input values encode to {expected}")]
    OutputBytes { format: QuantFormat, values: usize, expected: usize, found: usize },
}

/// Decodes `bytes` (whole blocks of `format`) into `out`, which must hold exactly the values they encode.
pub fn dequantize(format: QuantFormat, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let expected = format.values_in(bytes.len())?;
    if out.len() != expected {
        return Err(QuantError::OutputValues { format, bytes: bytes.len(), expected, found: out.len() });
    }
    let blocks = bytes.chunks_exact(format.block_bytes()).zip(out.chunks_exact_mut(format.block_elements()));
    let decode: fn(&[u8], &mut [f32]) = match format {
        QuantFormat::F32 => floats::dequantize_f32,
        QuantFormat::F16 => floats::dequantize_f16,
        QuantFormat::BF16 => floats::dequantize_bf16,
        QuantFormat::Q4_0 => legacy::dequantize_q4_0,
        QuantFormat::Q4_1 => legacy::dequantize_q4_1,
        QuantFormat::Q5_0 => legacy::dequantize_q5_0,
        QuantFormat::Q5_1 => legacy::dequantize_q5_1,
        QuantFormat::Q8_0 => legacy::dequantize_q8_0,
        QuantFormat::Q2_K => kquant_low::dequantize_q2_k,
        QuantFormat::Q3_K => kquant_low::dequantize_q3_k,
        QuantFormat::Q4_K => kquant_high::dequantize_q4_k,
        QuantFormat::Q5_K => kquant_high::dequantize_q5_k,
        QuantFormat::Q6_K => kquant_high::dequantize_q6_k,
        QuantFormat::IQ4_NL => iq4::dequantize_iq4_nl,
        QuantFormat::IQ4_XS => iq4::dequantize_iq4_xs,
    };
    for (block, values) in blocks {
        decode(block, values);
    }
    Ok(())
}

/// Encodes `values` (whole blocks of `format`) into `out`, which must be exactly as long as the encoding,
/// with the quantization `llama-quantize` applies when it has no importance matrix.
pub fn quantize(format: QuantFormat, values: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    let expected = format.bytes_for(values.len())?;
    if out.len() != expected {
        return Err(QuantError::OutputBytes { format, values: values.len(), expected, found: out.len() });
    }
    let blocks = values.chunks_exact(format.block_elements()).zip(out.chunks_exact_mut(format.block_bytes()));
    let encode: fn(&[f32], &mut [u8]) = match format {
        QuantFormat::F32 => floats::quantize_f32,
        QuantFormat::F16 => floats::quantize_f16,
        QuantFormat::BF16 => floats::quantize_bf16,
        QuantFormat::Q4_0 => legacy::quantize_q4_0,
        QuantFormat::Q4_1 => legacy::quantize_q4_1,
        QuantFormat::Q5_0 => legacy::quantize_q5_0,
        QuantFormat::Q5_1 => legacy::quantize_q5_1,
        QuantFormat::Q8_0 => legacy::quantize_q8_0,
        QuantFormat::Q2_K => kquant_low::quantize_q2_k,
        QuantFormat::Q3_K => kquant_low::quantize_q3_k,
        QuantFormat::Q4_K => kquant_high::quantize_q4_k,
        QuantFormat::Q5_K => kquant_high::quantize_q5_k,
        QuantFormat::Q6_K => kquant_high::quantize_q6_k,
        QuantFormat::IQ4_NL => iq4::quantize_iq4_nl,
        QuantFormat::IQ4_XS => iq4::quantize_iq4_xs,
    };
    for (block, bytes) in blocks {
        encode(block, bytes);
    }
    Ok(())
}

/// [`dequantize`] into a new vector.
pub fn dequantize_to_vec(format: QuantFormat, bytes: &[u8]) -> Result<Vec<f32>, QuantError> {
    let mut out = vec![0.0; format.values_in(bytes.len())?];
    dequantize(format, bytes, &mut out)?;
    Ok(out)
}

/// [`quantize`] into a new vector.
pub fn quantize_to_vec(format: QuantFormat, values: &[f32]) -> Result<Vec<u8>, QuantError> {
    let mut out = vec![0; format.bytes_for(values.len())?];
    quantize(format, values, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for format in QuantFormat::ALL {
            assert_eq!(QuantFormat::from_name(format.name()), Some(format));
            assert_eq!(QuantFormat::from_name(&format.name().to_lowercase()), Some(format));
            assert_eq!(QuantFormat::from_ggml_type_id(format.ggml_type_id()), Some(format));
            assert_eq!(format.geometry().0, format);
        }
        assert_eq!(QuantFormat::from_name("Q8_1"), None);
        assert_eq!(QuantFormat::from_ggml_type_id(9), None);
    }
}
