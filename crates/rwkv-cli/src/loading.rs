//! Opening a model for the commands that run one: a clear message for a missing file, a refusal
//! before any upload when it cannot fit the adapter, and a progress bar while it uploads.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use gpu_core::wgpu::DeviceType;
use gpu_core::Gpu;
use indicatif::HumanBytes;
use rwkv_model::gpu::{Model, ModelOptions, Path};
use rwkv_model::tokenizer::Tokenizer;
use rwkv_model::ModelFile;

use crate::device::DeviceArgs;
use crate::progress;

/// Where RWKV-7 GGUF files come from, for messages about a missing model.
pub const WHERE_MODELS_COME_FROM: &str = "RWKV-7 GGUF files are made with llama.cpp's convert_hf_to_gguf.py from \
     the Hugging Face RWKV-7 checkpoints (for example the fla-hub/rwkv7-* models), optionally quantized with \
     llama-quantize (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K, IQ4_NL and IQ4_XS are supported); or write a synthetic model (random weights, meaningless \
     text) with `rwkv-cli synth --size 0.1b --type q8_0 -o model.gguf`";

/// `--fused` / `--no-fused`: which implementation of the layer runs.
#[derive(Args, Clone, Debug, Default)]
pub struct PathArgs {
    /// Use the fused kernels (LayerNorm + token shift in one dispatch, LoRA inside time mix); the default.
    #[arg(long, conflicts_with = "no_fused")]
    pub fused: bool,
    /// Use one dispatch per operation (for comparison and debugging).
    #[arg(long)]
    pub no_fused: bool,
}

impl PathArgs {
    pub fn path(&self) -> Option<Path> {
        match (self.fused, self.no_fused) {
            (_, true) => Some(Path::Plain),
            (true, _) => Some(Path::Fused),
            _ => None,
        }
    }
}

/// A model on the GPU with its tokenizer.
pub struct Loaded {
    pub file: ModelFile,
    /// Shared: a batch ([`rwkv_model::batch::Batch`]) holds it too.
    pub model: Arc<Model>,
    pub tokenizer: Tokenizer,
    /// Seconds to read the tokenizer from the file.
    pub tokenizer_secs: f64,
    /// Seconds of `Model::load` (phases in `model.load_timings()`).
    pub load_secs: f64,
}

/// Opens and validates a GGUF model; a missing file gets an explanation of where models come from.
pub fn open_model_file(path: &FsPath) -> Result<ModelFile> {
    if !path.exists() {
        bail!("model file '{}' not found. {WHERE_MODELS_COME_FROM}", path.display());
    }
    ModelFile::open(path).with_context(|| format!("opening the model {}", path.display()))
}

/// Opens the GPU and the model file, checks that it fits, uploads it (with a progress bar).
pub fn load(device: &DeviceArgs, model_path: &FsPath, path: Option<Path>) -> Result<Loaded> {
    let file = open_model_file(model_path)?;
    let gpu = Arc::new(device.open()?);
    load_file(gpu, file, ModelOptions { path, prefill_coop: device.prefill_coop(), ..ModelOptions::default() })
}

/// Uploads an opened model file to `gpu` with `options` after checking that it fits.
pub fn load_file(gpu: Arc<Gpu>, file: ModelFile, options: ModelOptions) -> Result<Loaded> {
    load_file_with(gpu, file, &options)
}

/// [`load_file`] with borrowed model options.
pub fn load_file_with(gpu: Arc<Gpu>, file: ModelFile, options: &ModelOptions) -> Result<Loaded> {
    check_fits(&gpu, &file)?;
    let start = Instant::now();
    let tokenizer = Tokenizer::from_gguf(file.gguf())
        .with_context(|| format!("reading the tokenizer of {}", file.path().display()))?;
    let tokenizer_secs = start.elapsed().as_secs_f64();
    let bar = progress::bytes_bar("loading");
    let start = Instant::now();
    let model = Model::load(gpu.clone(), &file, options, &mut |p| {
        bar.set_length(p.total_bytes);
        bar.set_position(p.done_bytes);
    })
    .with_context(|| format!("loading {} onto {}", file.path().display(), gpu.caps().adapter_name))?;
    bar.finish_and_clear();
    let load_secs = start.elapsed().as_secs_f64();
    Ok(Loaded { file, model: Arc::new(model), tokenizer, tokenizer_secs, load_secs })
}

/// Refuses, before any upload, a model that cannot fit the device: a tensor the engine binds whole
/// (the embedding table) larger than one binding or buffer allows, or (on adapters that use system
/// memory) weights larger than the memory available.
pub fn check_fits(gpu: &Gpu, file: &ModelFile) -> Result<()> {
    let caps = gpu.caps();
    let limits = &caps.limits;
    let adapter = &caps.adapter_name;
    let emb = file.tensor("token_embd.weight")?;
    let whole = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let emb_bytes = emb.bytes.len() as u64;
    if emb_bytes > whole {
        bail!(
            "model too large for the adapter '{adapter}': token_embd.weight is {} ({emb_bytes} bytes) and is bound \
             whole, but this device allows {} per storage binding and {} per buffer (limits: {}{})",
            HumanBytes(emb_bytes),
            HumanBytes(limits.max_storage_buffer_binding_size),
            HumanBytes(limits.max_buffer_size),
            caps.policy.name(),
            if caps.policy.name() == "max" { "" } else { "; try --limits max" },
        );
    }
    let weights = estimated_weight_bytes(file);
    if caps.device_type == DeviceType::Cpu || caps.device_type == DeviceType::IntegratedGpu {
        if let Some(available) = available_system_memory() {
            if weights > available {
                bail!(
                    "model too large for the adapter '{adapter}': its weights need about {} on the device, but \
                     only {} of system memory is available",
                    HumanBytes(weights),
                    HumanBytes(available)
                );
            }
        }
    }
    Ok(())
}

/// The bytes the weights take on the device: the file's tensors, with the LoRA second stages widened
/// to f32 (as the loader stores them).
pub fn estimated_weight_bytes(file: &ModelFile) -> u64 {
    file.gguf()
        .tensor_infos()
        .iter()
        .map(|t| {
            let widened =
                ["time_mix_w2", "time_mix_a2", "time_mix_v2", "time_mix_g2"].iter().any(|n| t.name.contains(n));
            if widened {
                t.n_elements() * 4
            } else {
                t.size
            }
        })
        .sum()
}

/// `MemAvailable` from /proc/meminfo, where there is one.
fn available_system_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
