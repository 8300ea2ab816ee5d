pub mod adapters;
pub mod synth;
pub mod tokenize;
