//! RWKV-7 model support: GGUF model files (hyperparameters, tensor table, validation).

// Model files: errors, hyperparameters, the tensor table, validated access.
pub mod error;
pub mod hparams;
pub mod model_file;
pub mod tensors;

pub use error::ModelError;
pub use hparams::HParams;
pub use model_file::{ModelFile, TensorRef};
