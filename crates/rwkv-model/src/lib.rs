//! RWKV-7: GGUF model files (hyperparameters, tensor table, validation), the World tokenizer,
//! synthetic models, the CPU reference forward pass, and the GPU forward pass assembled from
//! kernels.

#![deny(missing_docs)]

// Model files: errors, hyperparameters, the tensor table, validated access.
pub mod error;
pub mod hparams;
pub mod model_file;
pub mod names;
pub mod tensors;

// Text: the World tokenizer. Test and benchmark models: the synthetic generator.
pub mod synth;
pub mod tokenizer;

pub use error::ModelError;
pub use hparams::HParams;
pub use model_file::{ModelFile, TensorRef};

// The CPU reference forward pass.
pub mod reference;

// The GPU forward pass.
pub mod gpu;

// Many sequences at once on the GPU.
pub mod batch;
