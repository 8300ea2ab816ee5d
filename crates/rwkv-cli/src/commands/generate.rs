//! `rwkv-cli generate`: continue a prompt, streaming the text as it is produced.
//!
//! Sampling defaults are ChatRWKV's `PIPELINE_ARGS` (temperature 1.0, top-p 0.85, top-k off,
//! presence 0.2, frequency 0.2, decay 0.996). Stops at token 0 (end of text), at the token limit or
//! at a stop string; prefill and decode speeds go to stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args as ClapArgs;
use rwkv_model::gpu::SamplerConfig;
use rwkv_server::StopMatcher;

use crate::device::DeviceArgs;
use crate::generator::Generator;
use crate::loading::{self, PathArgs};
use crate::progress;
use crate::sampling_args::{self, SamplingArgs};
use crate::text::read_prompt;

/// Prefills of at least this many tokens get a progress bar.
pub const PREFILL_BAR_MIN_TOKENS: usize = 512;

#[derive(ClapArgs)]
#[command(after_help = "Sampling defaults are ChatRWKV's PIPELINE_ARGS: --temperature 1.0 --top-p 0.85 --top-k 0 \
                        --presence-penalty 0.2 --frequency-penalty 0.2 --penalty-decay 0.996. --temperature 0 is \
                        greedy.")]
pub struct Args {
    /// The GGUF model file.
    #[arg(long)]
    pub model: PathBuf,
    /// The prompt text (fed as is: no template, no special token).
    #[arg(long, conflicts_with = "prompt_file", required_unless_present = "prompt_file")]
    pub prompt: Option<String>,
    /// A UTF-8 file holding the prompt.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// The most tokens to generate.
    #[arg(long, default_value_t = 200)]
    pub max_tokens: usize,
    /// Stop when the output contains this text (not printed); may be given several times.
    #[arg(long)]
    pub stop: Vec<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub path: PathArgs,
}

pub fn run(device: &DeviceArgs, args: Args) -> Result<()> {
    let prompt = read_prompt(args.prompt.as_deref(), args.prompt_file.as_deref())?;
    let cfg = args.sampling.config(&SamplerConfig::CHATRWKV);
    let loaded = loading::load(device, &args.model, args.path.path())?;
    sampling_args::validate(&cfg, loaded.model.hparams().vocab)?;
    let tokens = loaded.tokenizer.encode(&prompt);
    let state = loaded.model.new_state()?;
    let mut generator = Generator::streaming(&loaded.model, &state, &cfg)?;

    let bar = progress::tokens_bar("prefill", tokens.len(), PREFILL_BAR_MIN_TOKENS);
    let start = Instant::now();
    generator.prefill(&tokens, &mut |done, _| bar.set_position(done as u64))?;
    let prefill_secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let mut stdout = std::io::stdout().lock();
    let mut decoder = loaded.tokenizer.stream_decoder();
    let mut stops = StopMatcher::new(&args.stop);
    let start = Instant::now();
    let mut generated = 0;
    let mut why = "token limit";
    while generated < args.max_tokens {
        let token = generator.next_token()?;
        generated += 1;
        if token == 0 {
            why = "end of text (token 0)";
            break;
        }
        let text = stops.push(&decoder.push(token)?);
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        if stops.stopped() {
            why = "stop string";
            break;
        }
    }
    let decode_secs = start.elapsed().as_secs_f64();
    if !stops.stopped() {
        let rest = stops.push(&decoder.finish());
        stdout.write_all(rest.as_bytes())?;
        stdout.write_all(stops.finish().as_bytes())?;
    }
    writeln!(stdout)?;
    drop(stdout);
    eprintln!(
        "prefill: {} tokens in {:.3} s ({:.1} tok/s); decode: {generated} tokens in {:.3} s ({:.1} tok/s); \
         stopped at {why}; load {:.2} s",
        tokens.len(),
        prefill_secs,
        tokens.len() as f64 / prefill_secs.max(1e-9),
        decode_secs,
        generated as f64 / decode_secs.max(1e-9),
        loaded.load_secs,
    );
    Ok(())
}
