//! `rwkv-cli bench`: prefill (the prompt, and 64- and 128-token prompts) and decode speed of a
//! model (a file, or a synthetic one), after a warm-up, over several repeats; with the CPU time of
//! a decode token (record + submit, wait), the GPU work per token, GPU memory, a per-kernel GPU time
//! table where the adapter has timestamps, and a hash of the greedy tokens so that a speed change
//! which changes the output shows at once. Every `--json` field is documented in docs/bench.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use gpu_core::{ContextOptions, Gpu, KernelTime, LimitsPolicy, Timer};
use rwkv_model::gpu::{Logits, Model, ModelOptions, Path, PrefillCoop, SamplerConfig};
use rwkv_model::synth::{write_synthetic_model, ModelShape, SynthConfig, SynthType};
use rwkv_model::ModelFile;

use super::bench_batch;
use super::bench_report::{
    print_report, AdapterReport, KernelRow, KernelTables, LoadReport, ModelReport, Report, RunReport, ShortPrefill,
    Speed, Spread, Work,
};
use crate::device::DeviceArgs;
use crate::generator::Generator;
use crate::loading::{self, open_model_file};
use crate::progress;

#[derive(ClapArgs)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["model", "synthetic"])))]
pub struct Args {
    /// The GGUF model file.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Benchmark a synthetic model instead (random weights): an official size (0.1b, 0.4b, 1.5b, 2.9b, 7.2b)
    /// or LAYERSxWIDTH such as 2x128. It is written once to the temp directory and reused.
    #[arg(long)]
    pub synthetic: Option<String>,
    /// Storage type of the synthetic model: any `rwkv-cli synth --type` (f32, f16, q8_0, q4_k_m, ...).
    #[arg(long = "type", default_value = "q8_0", value_parser = parse_type, requires = "synthetic")]
    pub file_type: SynthType,
    /// Prompt tokens to prefill.
    #[arg(long, default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Tokens to generate (greedy) after the prompt.
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Timed repeats after the warm-up.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Benchmark the fused path only (the default).
    #[arg(long, conflicts_with_all = ["no_fused", "both"])]
    pub fused: bool,
    /// Benchmark the plain path (one dispatch per operation) only.
    #[arg(long, conflicts_with = "both")]
    pub no_fused: bool,
    /// Benchmark both paths, one after the other (A/B).
    #[arg(long)]
    pub both: bool,
    /// Also benchmark under the other limits policy: every chosen path runs with `--limits max`
    /// and with `--limits default` (A/B in one invocation).
    #[arg(long)]
    pub both_limits: bool,
    /// Print one JSON object (fields in docs/bench.md) instead of the report.
    #[arg(long)]
    pub json: bool,
    /// The most prompt tokens per prefill chunk, instead of the model's automatic choice for the
    /// adapter (the binding limits still cap it; the report gives the chunks used).
    #[arg(long)]
    pub chunk: Option<usize>,
    /// Only load the model (timed, with the load phases) and stop: no prefill or decode.
    #[arg(long)]
    pub load_only: bool,
    /// Threads that pack and upload the weights (default: one per core).
    #[arg(long)]
    pub load_threads: Option<usize>,
    /// Also benchmark the batched engine with these batch sizes (e.g. 1,8,32,64): aggregate and
    /// per-sequence decode speed, step time, and each sequence's quality hash against B = 1.
    #[arg(long, value_delimiter = ',')]
    pub batch: Vec<usize>,
}

/// The short prompts (a chat turn's length) whose prefill speed is reported besides the full prompt's.
const SHORT_PROMPTS: [usize; 2] = [64, 128];

fn parse_type(s: &str) -> Result<SynthType, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// FNV-1a (64-bit) of the token ids as little-endian u32s.
pub(super) fn fnv1a(tokens: &[u32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tokens.iter().flat_map(|t| t.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A fixed pseudo-random prompt (ids 1..65530, the World text tokens), the same on every run.
pub(super) fn bench_prompt(n: usize, vocab: usize) -> Vec<u32> {
    let top = vocab.min(65530) as u64 - 1;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (1 + x % top) as u32
        })
        .collect()
}

fn synthetic_shape(spec: &str) -> Result<ModelShape> {
    if let Some((l, w)) = spec.split_once(['x', 'X']) {
        let (l, w) = (l.trim().parse::<usize>(), w.trim().parse::<usize>());
        if let (Ok(layers), Ok(width)) = (l, w) {
            let shape = ModelShape::with_defaults(layers, width);
            shape.validate()?;
            return Ok(shape);
        }
    }
    Ok(ModelShape::official(spec)?)
}

/// The synthetic model's file in the temp directory, written (atomically) unless already there.
fn synthetic_model(spec: &str, file_type: SynthType) -> Result<PathBuf> {
    let shape = synthetic_shape(spec)?;
    let name = format!("rwkv-cli-synthetic-{}x{}-{file_type}-seed0.gguf", shape.layers, shape.width);
    let path = std::env::temp_dir().join(name);
    if path.exists() && ModelFile::open(&path).is_ok() {
        eprintln!("using the synthetic model {} (random weights: meaningless text)", path.display());
        return Ok(path);
    }
    eprintln!(
        "writing a synthetic {file_type} model ({} layers, width {}; random weights: meaningless text) to {}",
        shape.layers,
        shape.width,
        path.display()
    );
    let partial = path.with_extension("partial");
    let config = SynthConfig { shape, file_type, seed: 0, threads: None };
    let bar = progress::bytes_bar("synthesizing");
    write_synthetic_model(&partial, &config, &mut |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
    })
    .with_context(|| format!("writing {}", partial.display()))?;
    bar.finish_and_clear();
    std::fs::rename(&partial, &path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    Ok(path)
}

/// Groups the timer's rows by kernel name (the pipeline label up to its override constants),
/// largest first, with the bytes the kernels declared they read and the bandwidth that gives.
fn kernel_rows(times: Vec<KernelTime>) -> Vec<KernelRow> {
    let total: f64 = times.iter().map(|t| t.total_ns).sum();
    let mut rows: Vec<KernelRow> = Vec::new();
    for t in times {
        let name = t.kernel.split('[').next().unwrap_or(&t.kernel).to_string();
        match rows.iter_mut().find(|r| r.kernel == name) {
            Some(r) => {
                r.dispatches += t.dispatches;
                r.total_us += t.total_ns / 1e3;
                r.bytes += t.bytes;
            }
            None => rows.push(KernelRow {
                kernel: name,
                dispatches: t.dispatches,
                total_us: t.total_ns / 1e3,
                share: 0.0,
                bytes: t.bytes,
                gb_per_s: None,
            }),
        }
    }
    for r in &mut rows {
        r.share = if total > 0.0 { r.total_us * 1e3 / total } else { 0.0 };
        r.gb_per_s = (r.bytes > 0 && r.total_us > 0.0).then(|| r.bytes as f64 / (r.total_us * 1e3));
    }
    rows.sort_by(|a, b| b.total_us.total_cmp(&a.total_us));
    rows
}

/// The chunk lengths `forward` cuts a prompt of `n` tokens into.
fn prefill_chunks(model: &Model, n: usize) -> Vec<usize> {
    let mut lens = Vec::new();
    let mut left = n;
    while left > 0 {
        lens.push(model.chunk_len(left));
        left -= lens[lens.len() - 1];
    }
    lens
}

fn work(model: &Model, layers: usize) -> Work {
    let c = model.counters();
    let t = c.tokens.max(1) as f64;
    Work {
        dispatches_per_token: c.dispatches as f64 / t,
        dispatches_per_layer: c.dispatches as f64 / t / layers.max(1) as f64,
        passes_per_token: c.passes as f64 / t,
        submissions_per_token: c.submissions as f64 / t,
    }
}

/// What one greedy decode measured.
struct Decoded {
    /// Wall seconds of the `gen` tokens.
    seconds: f64,
    tokens: Vec<u32>,
    /// The GPU work of one decode step.
    work: Work,
    /// CPU microseconds per decode step recording and submitting it.
    record_submit_us: f64,
    /// CPU microseconds per token waiting for it.
    wait_us: f64,
}

/// Feeds `prompt` (untimed), then times `gen` greedy tokens.
fn one_repeat(model: &Model, prompt: &[u32], gen: usize) -> Result<Decoded> {
    let state = model.new_state()?;
    let mut generator = Generator::streaming(model, &state, &SamplerConfig::GREEDY)?;
    generator.prefill(prompt, &mut |_, _| {})?;
    let start = Instant::now();
    let tokens = (0..gen).map(|_| generator.next_token()).collect::<Result<Vec<u32>>>()?;
    let seconds = start.elapsed().as_secs_f64();
    let layers = model.hparams().n_layer.max(1) as f64;
    let s = generator.step_stats();
    let work = Work {
        dispatches_per_token: s.dispatches as f64,
        dispatches_per_layer: s.dispatches as f64 / layers,
        passes_per_token: s.passes as f64,
        submissions_per_token: 1.0,
    };
    let t = generator.decode_times();
    Ok(Decoded {
        seconds,
        tokens,
        work,
        record_submit_us: t.record_submit.as_secs_f64() * 1e6 / t.steps.max(1) as f64,
        wait_us: t.wait.as_secs_f64() * 1e6 / t.tokens.max(1) as f64,
    })
}

/// Seconds of one `forward` of `prompt` on a fresh state, with the last logits read back.
fn timed_prefill(model: &Model, prompt: &[u32]) -> Result<f64> {
    let state = model.new_state()?;
    let start = Instant::now();
    model.forward(&state, prompt, &Logits::Last)?;
    Ok(start.elapsed().as_secs_f64())
}

fn bench_path(
    gpu: &Arc<Gpu>,
    file: ModelFile,
    path: Path,
    args: &Args,
    prefill_coop: PrefillCoop,
) -> Result<(RunReport, ModelFile)> {
    let options =
        ModelOptions { path: Some(path), max_chunk: args.chunk, prefill_coop, load_threads: args.load_threads };
    let loaded = loading::load_file(gpu.clone(), file, options)?;
    let model = &loaded.model;
    let state_bytes = model.new_state()?.bytes();
    let report = RunReport {
        path: match path {
            Path::Fused => "fused",
            Path::Plain => "plain",
        }
        .to_string(),
        limits: gpu.caps().policy.name().to_string(),
        load_s: loaded.load_secs,
        load: LoadReport::of(&loaded),
        gpu_memory_bytes: model.gpu_bytes() + state_bytes,
        max_chunk: model.max_chunk(),
        speed: if args.load_only { None } else { Some(measure(gpu, model, args)?) },
        batch: if args.load_only || args.batch.is_empty() {
            None
        } else {
            Some(bench_batch::measure(model, &args.batch, args.prompt_tokens, args.gen_tokens)?)
        },
    };
    Ok((report, loaded.file))
}

/// The timed rounds, the quality hash and the per-kernel tables.
fn measure(gpu: &Arc<Gpu>, model: &Model, args: &Args) -> Result<Speed> {
    let hp = model.hparams().clone();
    let prompt = bench_prompt(args.prompt_tokens, hp.vocab);
    let short_prompt = bench_prompt(SHORT_PROMPTS[SHORT_PROMPTS.len() - 1], hp.vocab);
    let (mut prefill_rates, mut decode_rates, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut record_submit_us, mut wait_us) = (Vec::new(), Vec::new());
    let mut short_rates = vec![Vec::new(); SHORT_PROMPTS.len()];
    let (mut prefill_work, mut decode_work) = (Work::default(), Work::default());
    let bar = progress::tokens_bar("bench", args.repeats + 1, 1);
    for repeat in 0..=args.repeats {
        // Repeat 0 is the warm-up (pipelines and uniforms made on first use, driver caches).
        model.reset_counters();
        let prefill_s = timed_prefill(model, &prompt)?;
        if repeat == 1 {
            prefill_work = work(model, hp.n_layer);
        }
        let short_s =
            SHORT_PROMPTS.iter().map(|&n| timed_prefill(model, &short_prompt[..n])).collect::<Result<Vec<f64>>>()?;
        model.reset_counters();
        let decoded = one_repeat(model, &prompt[..1], args.gen_tokens)?;
        if repeat == 1 {
            decode_work = decoded.work;
        }
        if repeat > 0 {
            prefill_rates.push(args.prompt_tokens as f64 / prefill_s.max(1e-9));
            for ((rates, seconds), n) in short_rates.iter_mut().zip(short_s).zip(SHORT_PROMPTS) {
                rates.push(n as f64 / seconds.max(1e-9));
            }
            decode_rates.push(args.gen_tokens as f64 / decoded.seconds.max(1e-9));
            record_submit_us.push(decoded.record_submit_us);
            wait_us.push(decoded.wait_us);
            hashes.push(fnv1a(&decoded.tokens));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // The quality hash: greedy tokens after the full prompt.
    let quality_tokens = one_repeat(model, &prompt, args.gen_tokens)?.tokens;
    let kernel_times = match Timer::new(gpu, 8192) {
        None => None,
        Some(mut timer) => {
            let state = model.new_state()?;
            let chunk = model.chunk_len(args.prompt_tokens);
            let prefill = kernel_rows(model.profile(&state, &prompt[..chunk], &mut timer)?);
            let decode = kernel_rows(model.profile(&state, &prompt[chunk - 1..chunk], &mut timer)?);
            Some(KernelTables { decode, prefill, prefill_tokens: chunk })
        }
    };
    Ok(Speed {
        prefill_chunks: prefill_chunks(model, args.prompt_tokens),
        prefill_tok_s: Spread::of(prefill_rates),
        short_prefill: SHORT_PROMPTS
            .iter()
            .zip(short_rates)
            .map(|(&tokens, rates)| ShortPrefill { tokens, tok_s: Spread::of(rates) })
            .collect(),
        decode_tok_s: Spread::of(decode_rates),
        decode_record_submit_us: Spread::of(record_submit_us),
        decode_wait_us: Spread::of(wait_us),
        prefill: prefill_work,
        decode: decode_work,
        quality_hash: format!("{:016x}", fnv1a(&quality_tokens)),
        tokens_identical_across_repeats: hashes.windows(2).all(|w| w[0] == w[1]),
        kernel_times,
    })
}

pub fn run(device: &DeviceArgs, args: Args) -> Result<()> {
    if args.prompt_tokens == 0 || args.gen_tokens == 0 || args.repeats == 0 {
        bail!("--prompt-tokens, --gen-tokens and --repeats must each be at least 1");
    }
    let (model_path, synthetic) = match (&args.model, &args.synthetic) {
        (Some(p), None) => (p.clone(), false),
        (None, Some(spec)) => (synthetic_model(spec, args.file_type)?, true),
        _ => bail!("give --model FILE or --synthetic SIZE"),
    };
    let start = Instant::now();
    let mut file = open_model_file(&model_path)?;
    let open_s = start.elapsed().as_secs_f64();
    let gpu = Arc::new(device.open()?);
    let caps = gpu.caps();
    let hp = file.hparams().clone();
    let mut types: Vec<String> = file.gguf().tensor_infos().iter().map(|t| t.ggml_type.name().to_string()).collect();
    types.sort();
    types.dedup();
    let model = ModelReport {
        file: model_path.display().to_string(),
        synthetic,
        layers: hp.n_layer,
        width: hp.n_embd,
        ffn: hp.ffn,
        head_size: hp.head_size,
        vocab: hp.vocab,
        file_bytes: file.gguf().file_len(),
        tensor_bytes: file.gguf().tensor_infos().iter().map(|t| t.size).sum(),
        types,
        open_s,
    };
    let adapter = AdapterReport {
        name: caps.adapter_name.clone(),
        backend: format!("{:?}", caps.backend),
        device_type: format!("{:?}", caps.device_type),
        driver: caps.driver.clone(),
        limits: caps.policy.name().to_string(),
        features: caps.feature_names(),
    };
    let paths: Vec<Path> = match (args.both, args.no_fused) {
        (true, _) => vec![Path::Fused, Path::Plain],
        (false, true) => vec![Path::Plain],
        _ => vec![Path::Fused],
    };
    let mut runs = Vec::new();
    for path in &paths {
        let (run, back) = bench_path(&gpu, file, *path, &args, device.prefill_coop())?;
        file = back;
        runs.push(run);
    }
    if args.both_limits {
        let other = match device.limits {
            LimitsPolicy::Max => LimitsPolicy::Default,
            LimitsPolicy::Default => LimitsPolicy::Max,
        };
        let options = ContextOptions { limits: other, ..device.options()? };
        let other_gpu = Arc::new(Gpu::new(&options).context("opening the GPU with the other limits policy")?);
        for path in &paths {
            let (run, back) = bench_path(&other_gpu, file, *path, &args, device.prefill_coop())?;
            file = back;
            runs.push(run);
        }
    }
    let report = Report {
        adapter,
        model,
        prompt_tokens: args.prompt_tokens,
        gen_tokens: args.gen_tokens,
        repeats: args.repeats,
        runs,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}
