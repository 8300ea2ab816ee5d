pub mod adapters;
pub mod bench;
mod bench_report;
pub mod chat;
pub mod generate;
pub mod info;
pub mod logits;
pub mod synth;
pub mod tokenize;
