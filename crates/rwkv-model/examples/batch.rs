//! Several sequences decoded together: each step reads the weights once for all of them, and a
//! sequence may join or leave between any two steps. Each prompt is one sequence; every text
//! piece is printed as it comes, tagged with its prompt's index, and a sequence leaves after 50
//! tokens.
//!
//! `cargo run --release -p rwkv-model --example batch -- MODEL.gguf "First prompt" "Second prompt" ...`

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use gpu_core::{ContextOptions, Gpu};
use rwkv_model::batch::{Batch, BatchOptions};
use rwkv_model::gpu::{Model, ModelOptions, SamplerConfig};
use rwkv_model::tokenizer::Tokenizer;
use rwkv_model::ModelFile;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, prompts @ ..] = args.as_slice() else {
        return Err("usage: batch MODEL.gguf PROMPT...".into());
    };
    let file = ModelFile::open(std::path::Path::new(path))?;
    let tokenizer = Tokenizer::from_gguf(file.gguf())?;
    let gpu = Arc::new(Gpu::new(&ContextOptions::default())?);
    let model = Arc::new(Model::load(gpu, &file, &ModelOptions::default(), &mut |_| {})?);

    // Room for every prompt at once, and a cache of prompt states (256 MiB).
    let options = BatchOptions { cache_bytes: 256 << 20, ..BatchOptions::new(prompts.len().max(1)) };
    let mut batch = Batch::new(model, options)?;
    let mut texts = HashMap::new();
    for (i, prompt) in prompts.iter().enumerate() {
        let config = SamplerConfig { seed: i as u64, ..SamplerConfig::CHATRWKV };
        let id = batch.add(&tokenizer.encode(prompt), &config)?;
        texts.insert(id, (i, tokenizer.stream_decoder(), 0));
    }
    // Each step returns the tokens read back since the last call (the previous step's), tagged
    // with their sequence.
    while !batch.is_empty() {
        for (id, token) in batch.step()? {
            let Some((i, text, count)) = texts.get_mut(&id) else { continue };
            let piece = text.push(token)?;
            println!("[{i}] {piece:?}");
            *count += 1;
            if *count == 50 {
                batch.remove(id);
            }
        }
    }
    Ok(())
}
