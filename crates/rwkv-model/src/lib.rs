//! RWKV-7: GGUF model files (hyperparameters, tensor table, validation), the CPU reference
//! forward pass, and the GPU forward pass assembled from kernels.

// Model files: errors, hyperparameters, the tensor table, validated access.
pub mod error;
pub mod hparams;
pub mod model_file;
pub mod tensors;

pub use error::ModelError;
pub use hparams::HParams;
pub use model_file::{ModelFile, TensorRef};

// The CPU reference forward pass.
pub mod reference;

// The GPU forward pass.
pub mod gpu;
