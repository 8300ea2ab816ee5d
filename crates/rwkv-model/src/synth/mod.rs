//! Synthetic RWKV-7 GGUF models of any shape (official sizes 0.1B to 7.2B or explicit), deterministic from
//! a seed, with the World vocabulary and the metadata of llama.cpp's converter. The weights follow the
//! official initialisation pattern with random variation (see [`init`]), so logits stay finite and
//! unsaturated over long runs; they are for testing and benchmarking engines, not for text.
//!
//! Tensor types follow llama.cpp: `f32` files are all F32; `f16` files have F16 matrices and LoRA matrices;
//! `q8_0` files are laid out as llama-quantize writes them (Q8_0 embedding, head, attention and FFN
//! projections; F16 `a1 a2 v1 v2 g1 g2`). In every file `time_mix_w1`, `w2`, `lerp_fused` and the 1-D
//! tensors are F32.

mod generate;
mod init;
mod metadata;
mod plan;
mod rng;
mod shape;

#[cfg(test)]
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod tests;

pub use generate::write_synthetic_model;
pub use shape::{LoraRanks, ModelShape, HEAD_SIZE, OFFICIAL_SIZES};

use thiserror::Error;

/// The storage type of a synthetic file (`--type f32|f16|q8_0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SynthType {
    F32,
    F16,
    Q8_0,
}

impl std::str::FromStr for SynthType {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, SynthError> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(SynthType::F32),
            "f16" => Ok(SynthType::F16),
            "q8_0" | "q8" => Ok(SynthType::Q8_0),
            _ => Err(SynthError::UnknownType(s.to_owned())),
        }
    }
}

impl std::fmt::Display for SynthType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SynthType::F32 => "f32",
            SynthType::F16 => "f16",
            SynthType::Q8_0 => "q8_0",
        })
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub shape: ModelShape,
    pub file_type: SynthType,
    pub seed: u64,
    /// Generator threads; `None` uses every available core. The values do not depend on it.
    pub threads: Option<usize>,
}

/// Reported while the file is written.
#[derive(Clone, Copy, Debug)]
pub struct SynthProgress<'a> {
    /// The tensor being written and its position in the file.
    pub tensor: &'a str,
    pub tensor_index: usize,
    pub tensor_count: usize,
    /// Tensor data bytes written so far, out of the total (metadata not counted).
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthSummary {
    pub tensors: usize,
    /// Number of weights (all tensor elements, layer 0's placeholder copies included, as gguf-py counts).
    pub params: u64,
    pub file_bytes: u64,
}

#[derive(Debug, Error)]
pub enum SynthError {
    #[error("unknown model size '{0}' (expected one of 0.1b, 0.4b, 1.5b, 2.9b, 7.2b)")]
    UnknownSize(String),
    #[error("unknown file type '{0}' (expected f32, f16 or q8_0)")]
    UnknownType(String),
    #[error("invalid model shape: {0}")]
    InvalidShape(String),
    #[error(transparent)]
    Gguf(#[from] gguf_file::GgufError),
}
