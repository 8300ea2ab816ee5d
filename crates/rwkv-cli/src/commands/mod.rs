pub mod adapters;
pub mod info;
pub mod synth;
pub mod tokenize;
