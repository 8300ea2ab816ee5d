//! RWKV-7 model support: GGUF model files (hyperparameters, tensor table, validation), the World tokenizer,
//! synthetic models.

// Model files: errors, hyperparameters, the tensor table, validated access.
pub mod error;
pub mod hparams;
pub mod model_file;
pub mod tensors;

// Text: the World tokenizer. Test and benchmark models: the synthetic generator.
pub mod synth;
pub mod tokenizer;

pub use error::ModelError;
pub use hparams::HParams;
pub use model_file::{ModelFile, TensorRef};
