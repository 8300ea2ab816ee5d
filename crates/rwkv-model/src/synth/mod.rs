//! Synthetic RWKV-7 GGUF models of any shape (official sizes 0.1B to 7.2B or explicit), deterministic from
//! a seed, with the World vocabulary and the metadata of llama.cpp's converter. The weights follow the
//! official initialisation pattern with random variation (see `synth/init.rs`), so logits stay finite and
//! unsaturated over long runs; they are for testing and benchmarking engines, not for text.
//!
//! Tensor types follow llama.cpp (see [`SynthType`]): `f32` and `f16` files are what llama.cpp's converter
//! writes; every other type is what `llama-quantize` writes for that file type from the `f32` file (made
//! with ggml's reference quantizers, `ggml_quants::quantize`, so the bytes are llama-quantize's). In every
//! file `time_mix_w1`, `w2`, `lerp_fused` and the 1-D tensors are F32.

mod file_type;
mod generate;
mod init;
mod metadata;
mod plan;
mod rng;
mod shape;

#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod tests;

pub use file_type::SynthType;
pub use generate::write_synthetic_model;
pub use shape::{LoraRanks, ModelShape, HEAD_SIZE, OFFICIAL_SIZES};

use thiserror::Error;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Layers, widths and LoRA ranks.
    pub shape: ModelShape,
    /// The storage type of the tensors.
    pub file_type: SynthType,
    /// Seeds every weight: the same config gives the same file, byte for byte.
    pub seed: u64,
    /// Generator threads; `None` uses every available core. The values do not depend on it.
    pub threads: Option<usize>,
}

/// Reported while the file is written.
#[derive(Clone, Copy, Debug)]
pub struct SynthProgress<'a> {
    /// The tensor being written and its position in the file.
    pub tensor: &'a str,
    /// 0-based index of that tensor in the file.
    pub tensor_index: usize,
    /// Tensors in the file.
    pub tensor_count: usize,
    /// Tensor data bytes written so far, out of the total (metadata not counted).
    pub bytes_done: u64,
    /// Tensor data bytes of the whole file.
    pub bytes_total: u64,
}

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthSummary {
    /// Tensors written.
    pub tensors: usize,
    /// Number of weights (all tensor elements, layer 0's placeholder copies included, as gguf-py counts).
    pub params: u64,
    /// Size of the file in bytes.
    pub file_bytes: u64,
}

/// Why a synthetic model could not be made.
#[derive(Debug, Error)]
pub enum SynthError {
    /// A size name that is not one of [`OFFICIAL_SIZES`].
    #[error("unknown model size '{0}' (expected one of 0.1b, 0.4b, 1.5b, 2.9b, 7.2b)")]
    UnknownSize(String),
    /// A file type name the parser does not know.
    #[error("unknown file type '{name}' (expected one of {known}, or pure-TYPE)")]
    UnknownType {
        /// The name given.
        name: String,
        /// The names accepted, listed.
        known: String,
    },
    /// A matrix cannot be stored in the file type's format and the format has no fallback.
    #[error(
        "tensor '{tensor}' cannot be stored as {file_type}: its rows of {row_len} values are not whole blocks of \
         {}, which has no fallback type (llama-quantize refuses it too)", file_type.base()
    )]
    NoFallback {
        /// The GGUF tensor name.
        tensor: String,
        /// The file type asked for.
        file_type: SynthType,
        /// The tensor's row length in values.
        row_len: usize,
    },
    /// A size is zero, or the width is not a whole number of heads.
    #[error("invalid model shape: {0}")]
    InvalidShape(String),
    /// Writing the GGUF file failed.
    #[error(transparent)]
    Gguf(#[from] gguf_file::GgufError),
}
