//! `rwkv-cli logits`: the raw logits of chosen positions of a token sequence, as little-endian f32
//! (vocab values per position, in order), with the argmax of each printed.

use std::io::Write as _;
use std::path::{Path as FsPath, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use rwkv_model::gpu::Logits;

use crate::device::DeviceArgs;
use crate::loading::{self, PathArgs};

#[derive(ClapArgs)]
pub struct Args {
    /// The GGUF model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Token ids, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        conflicts_with = "tokens_file",
        required_unless_present = "tokens_file"
    )]
    pub tokens: Option<Vec<u32>>,
    /// A JSON file of token ids: an array, or an object with a `token_ids` array (like golden tokens.json).
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// Which positions (0-based) to output: `last`, `all`, or a comma-separated list such as 0,54,108.
    #[arg(long, default_value = "last")]
    pub positions: String,
    /// Output file: raw little-endian f32, vocab values per position, in the order given.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub path: PathArgs,
}

fn read_tokens_file(path: &FsPath) -> Result<Vec<u32>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let array = match &json {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("token_ids") {
            Some(serde_json::Value::Array(a)) => a,
            _ => bail!("{}: a JSON object of tokens needs a `token_ids` array", path.display()),
        },
        _ => bail!("{}: expected an array of token ids or an object with `token_ids`", path.display()),
    };
    array
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|t| u32::try_from(t).ok())
                .with_context(|| format!("{}: token {i} is not a token id: {v}", path.display()))
        })
        .collect()
}

/// Parses `last`, `all` or a list of positions for `n` tokens.
fn parse_positions(spec: &str, n: usize) -> Result<Vec<usize>> {
    let positions = match spec.trim() {
        "last" => vec![n - 1],
        "all" => (0..n).collect(),
        list => list
            .split(',')
            .map(|p| p.trim().parse::<usize>().with_context(|| format!("--positions: '{p}' is not a position")))
            .collect::<Result<Vec<_>>>()?,
    };
    if let Some(&p) = positions.iter().find(|&&p| p >= n) {
        bail!("--positions: position {p} is past the last token (there are {n} tokens, positions 0..{})", n - 1);
    }
    Ok(positions)
}

pub fn run(device: &DeviceArgs, args: Args) -> Result<()> {
    let tokens = match (&args.tokens, &args.tokens_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => read_tokens_file(f)?,
        (None, None) => bail!("give --tokens or --tokens-file"),
    };
    if tokens.is_empty() {
        bail!("no tokens given");
    }
    let positions = parse_positions(&args.positions, tokens.len())?;
    let loaded = loading::load(device, &args.model, args.path.path())?;
    let vocab = loaded.model.hparams().vocab;
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
        bail!("token id {bad} is outside the model's vocabulary of {vocab}");
    }
    let state = loaded.model.new_state()?;
    // Forward wants positions in increasing order; write them out in the order asked.
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let rows = loaded.model.forward(&state, &tokens, &Logits::At(sorted.clone()))?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?,
    );
    for &p in &positions {
        let row = &rows[sorted.binary_search(&p).expect("every position was computed")];
        for v in row {
            out.write_all(&v.to_le_bytes())?;
        }
        // The first largest logit (NaN never wins).
        let best = row.iter().enumerate().filter(|(_, v)| !v.is_nan()).reduce(|a, b| if b.1 > a.1 { b } else { a });
        match best {
            None => println!("position {p}: every logit is NaN"),
            Some((i, v)) => println!("position {p}: argmax {i} (logit {v:.4})"),
        }
    }
    out.flush().with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {} positions x {vocab} logits to {}", positions.len(), args.out.display());
    Ok(())
}
