//! One sequence: load a GGUF model, prefill a prompt, and stream 100 sampled tokens as text
//! (ChatRWKV's default sampling settings, seed 42).
//!
//! `cargo run --release -p rwkv-model --example generate -- MODEL.gguf "The capital of France is"`

use std::error::Error;
use std::io::Write;
use std::sync::Arc;

use gpu_core::{ContextOptions, Gpu};
use rwkv_model::gpu::{Model, ModelOptions, SamplerConfig};
use rwkv_model::tokenizer::Tokenizer;
use rwkv_model::ModelFile;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (path, prompt) = match (args.next(), args.next()) {
        (Some(path), Some(prompt)) => (path, prompt),
        _ => return Err("usage: generate MODEL.gguf PROMPT".into()),
    };
    let file = ModelFile::open(std::path::Path::new(&path))?;
    let tokenizer = Tokenizer::from_gguf(file.gguf())?;
    let gpu = Arc::new(Gpu::new(&ContextOptions::default())?);
    let model = Model::load(gpu, &file, &ModelOptions::default(), &mut |_| {})?;

    let state = model.new_state()?;
    let config = SamplerConfig { seed: 42, ..SamplerConfig::CHATRWKV };
    // Lookahead 1: the GPU computes the next token while this one is printed.
    let mut generator = model.generator(&state, &config, 1)?;
    generator.prefill(&tokenizer.encode(&prompt))?;
    let mut text = tokenizer.stream_decoder();
    let mut out = std::io::stdout().lock();
    write!(out, "{prompt}")?;
    for _ in 0..100 {
        // Whole characters only: a token may end in the middle of one.
        write!(out, "{}", text.push(generator.next_token()?)?)?;
        out.flush()?;
    }
    writeln!(out)?;
    Ok(())
}
