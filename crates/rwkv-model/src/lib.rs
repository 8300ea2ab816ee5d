//! RWKV-7 model support: World tokenizer, synthetic models.

pub mod synth;
pub mod tokenizer;
