//! `rwkv-cli serve`: an OpenAI-compatible HTTP server (rwkv-server) on the batched engine.
//! Logs one line per request to stderr; SIGINT/SIGTERM stop it (streams in flight are ended) and
//! it exits 0.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use rwkv_model::batch::{Batch, BatchOptions};
use rwkv_server::{RequestLog, Server, ServerOptions, TextModel};

use crate::device::DeviceArgs;
use crate::loading::{self, PathArgs};

#[derive(ClapArgs)]
#[command(after_help = "Routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (stream or not), \
                        GET /health. Unset sampling fields take ChatRWKV's defaults (completions: temperature 1.0, \
                        top_p 0.85, presence/frequency 0.2; chat: top_p 0.3, presence/frequency 0.5, token 0 \
                        banned).")]
pub struct Args {
    /// The GGUF model file.
    #[arg(long)]
    pub model: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// The most sequences decoded together; more requests wait in the queue.
    #[arg(long, default_value_t = 16)]
    pub max_batch: usize,
    /// Require `Authorization: Bearer KEY` on the /v1 routes.
    #[arg(long)]
    pub api_key: Option<String>,
    /// The model's name in the API (default: the file name without `.gguf`).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Requests that may wait for a batch slot; beyond, requests get 503.
    #[arg(long, default_value_t = ServerOptions::default().max_queue)]
    pub max_queue: usize,
    /// MiB of GPU memory for the prefix-state cache (0: off).
    #[arg(long, default_value_t = 1024)]
    pub cache_mib: u64,
    /// The most prompt tokens of one request.
    #[arg(long, default_value_t = ServerOptions::default().max_prompt_tokens)]
    pub max_prompt_tokens: usize,
    /// The most tokens one request may generate (`max_tokens`; the chat default).
    #[arg(long, default_value_t = ServerOptions::default().max_output_tokens)]
    pub max_output_tokens: usize,
    #[command(flatten)]
    pub path: PathArgs,
}

pub fn run(device: &DeviceArgs, args: Args) -> Result<()> {
    let model_name = match &args.model_name {
        Some(name) => name.clone(),
        None => args
            .model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .context("the model path has no file name; give --model-name")?,
    };
    let loaded = loading::load(device, &args.model, args.path.path())?;
    let text = TextModel::from_model_file(&loaded.file, loaded.tokenizer)
        .with_context(|| format!("reading the tokenizer and chat template of {}", args.model.display()))?;
    let batch = Batch::new(
        loaded.model.clone(),
        BatchOptions { cache_bytes: args.cache_mib << 20, ..BatchOptions::new(args.max_batch) },
    )
    .context("making the batch")?;
    let options = ServerOptions {
        model_name: model_name.clone(),
        api_key: args.api_key.clone(),
        max_queue: args.max_queue,
        max_prompt_tokens: args.max_prompt_tokens,
        max_output_tokens: args.max_output_tokens,
        ..ServerOptions::default()
    };
    let log = Arc::new(|record: &RequestLog| eprintln!("{record}"));
    let server = Server::new(batch, text, options, log)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async {
        let address = format!("{}:{}", args.host, args.port);
        let listener =
            tokio::net::TcpListener::bind(&address).await.with_context(|| format!("listening on {address}"))?;
        let bound = listener.local_addr()?;
        eprintln!(
            "serving {model_name} on http://{bound} (max batch {}, model loaded in {:.2} s); Ctrl-C stops",
            args.max_batch, loaded.load_secs
        );
        server.serve(listener, rwkv_server::shutdown_signal()).await?;
        eprintln!("stopped");
        anyhow::Ok(())
    })
}
