//! `rwkv-cli tokenize`: the token ids of a text, as a JSON array.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use gguf_file::GgufFile;
use rwkv_model::tokenizer::Tokenizer;

#[derive(ClapArgs)]
pub struct Args {
    /// GGUF model whose tokenizer to use; without it, the built-in RWKV World vocabulary.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The text to encode (UTF-8; no special tokens are added).
    pub text: String,
}

pub fn run(args: Args) -> Result<()> {
    let tokenizer = match &args.model {
        None => Tokenizer::world(),
        Some(path) => {
            let file = GgufFile::open(path)?;
            Tokenizer::from_gguf(&file).with_context(|| format!("reading the tokenizer of {}", path.display()))?
        }
    };
    println!("{}", serde_json::to_string(&tokenizer.encode(&args.text))?);
    Ok(())
}
