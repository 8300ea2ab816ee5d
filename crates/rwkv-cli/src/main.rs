//! `rwkv-cli`: the user-facing program. Only this crate prints.

mod commands;
mod device;
mod generator;
mod loading;
mod progress;
mod sampling_args;
mod text;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rwkv-cli", version, about = "RWKV-7 inference on any GPU through WebGPU")]
struct Cli {
    #[command(flatten)]
    device: device::DeviceArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the GPU adapters with their backend, type, limits and features.
    Adapters(commands::adapters::Args),
    /// Show a GGUF model's metadata, RWKV-7 hyperparameters and tensors (and why it is not loadable, if so).
    Info(commands::info::Args),
    /// Print the token ids of a text as JSON (built-in World vocabulary, or a model's).
    Tokenize(commands::tokenize::Args),
    /// Write a synthetic RWKV-7 GGUF of an official size or any shape (random weights, for tests and benchmarks).
    Synth(commands::synth::Args),
    /// Write the logits of chosen positions of a token sequence to a raw f32 file.
    Logits(commands::logits::Args),
    /// Continue a prompt, streaming the text (sampling defaults: ChatRWKV's).
    Generate(commands::generate::Args),
    /// Talk with a model (User/Assistant turns; the state carries across turns).
    Chat(commands::chat::Args),
    /// Serve the model over HTTP with OpenAI's API (completions, chat, streaming) on the batched engine.
    Serve(commands::serve::Args),
    /// Measure prefill and decode speed, GPU work per token and GPU time per kernel.
    Bench(commands::bench::Args),
    /// Load an OpenAI-compatible server with concurrent streaming clients; report tok/s and latencies.
    Loadtest(commands::loadtest::Args),
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Adapters(a) => commands::adapters::run(&cli.device, a),
        Command::Info(a) => commands::info::run(a),
        Command::Tokenize(a) => commands::tokenize::run(a),
        Command::Synth(a) => commands::synth::run(a),
        Command::Logits(a) => commands::logits::run(&cli.device, a),
        Command::Generate(a) => commands::generate::run(&cli.device, a),
        Command::Chat(a) => commands::chat::run(&cli.device, a),
        Command::Bench(a) => commands::bench::run(&cli.device, a),
        Command::Serve(a) => commands::serve::run(&cli.device, a),
        Command::Loadtest(a) => commands::loadtest::run(a),
    }
}
