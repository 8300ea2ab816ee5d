//! RWKV-7 model support: World tokenizer, synthetic models.

pub mod tokenizer;
