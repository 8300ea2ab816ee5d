//! What `rwkv-cli bench` reports: the report's types (also its `--json` form, documented in
//! docs/bench.md) and the text report.

use crate::loading;
use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct Report {
    pub(crate) adapter: AdapterReport,
    pub(crate) model: ModelReport,
    pub(crate) prompt_tokens: usize,
    pub(crate) gen_tokens: usize,
    pub(crate) repeats: usize,
    pub(crate) runs: Vec<RunReport>,
}

#[derive(Serialize)]
pub(crate) struct AdapterReport {
    pub(crate) name: String,
    pub(crate) backend: String,
    pub(crate) device_type: String,
    pub(crate) driver: String,
    pub(crate) limits: String,
    pub(crate) features: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct ModelReport {
    pub(crate) file: String,
    pub(crate) synthetic: bool,
    pub(crate) layers: usize,
    pub(crate) width: usize,
    pub(crate) ffn: usize,
    pub(crate) head_size: usize,
    pub(crate) vocab: usize,
    pub(crate) file_bytes: u64,
    pub(crate) tensor_bytes: u64,
    pub(crate) types: Vec<String>,
    /// Seconds to open (memory-map), parse and validate the file.
    pub(crate) open_s: f64,
}

#[derive(Serialize, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    pub(crate) fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1] }
    }
}

#[derive(Serialize, Default)]
pub(crate) struct Work {
    pub(crate) dispatches_per_token: f64,
    pub(crate) dispatches_per_layer: f64,
    pub(crate) passes_per_token: f64,
    pub(crate) submissions_per_token: f64,
}

#[derive(Serialize)]
pub(crate) struct KernelRow {
    pub(crate) kernel: String,
    pub(crate) dispatches: u32,
    pub(crate) total_us: f64,
    pub(crate) share: f64,
    /// Bytes of weights and activations the dispatches read, as the kernels count them (0 for
    /// kernels that do not count: only the projections do).
    pub(crate) bytes: u64,
    /// `bytes` / GPU time in GB/s (10^9 bytes per second); absent where `bytes` is 0.
    pub(crate) gb_per_s: Option<f64>,
}

#[derive(Serialize)]
pub(crate) struct KernelTables {
    pub(crate) decode: Vec<KernelRow>,
    pub(crate) prefill: Vec<KernelRow>,
    pub(crate) prefill_tokens: usize,
}

#[derive(Serialize)]
pub(crate) struct RunReport {
    pub(crate) path: String,
    pub(crate) limits: String,
    pub(crate) load_s: f64,
    pub(crate) load: LoadReport,
    pub(crate) gpu_memory_bytes: u64,
    /// The most tokens per prefill chunk (the model's capacity).
    pub(crate) max_chunk: usize,
    /// Absent with `--load-only`.
    #[serde(flatten)]
    pub(crate) speed: Option<Speed>,
    /// The batched engine's figures (`--batch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) batch: Option<Vec<super::bench_batch::BatchRun>>,
}

/// The phases of the load (wall seconds) and what buffer and pipeline creation cost in it
/// (thread-seconds summed over the loading threads).
#[derive(Serialize)]
pub(crate) struct LoadReport {
    pub(crate) tokenizer_s: f64,
    pub(crate) threads: usize,
    pub(crate) weights_s: f64,
    pub(crate) kernels_s: f64,
    pub(crate) scratch_s: f64,
    pub(crate) upload_wait_s: f64,
    pub(crate) buffers: u64,
    pub(crate) buffer_bytes: u64,
    pub(crate) buffer_create_thread_s: f64,
    pub(crate) buffer_fill_thread_s: f64,
    pub(crate) buffer_finish_thread_s: f64,
    pub(crate) pipelines: u64,
    pub(crate) pipeline_thread_s: f64,
}

impl LoadReport {
    pub(crate) fn of(loaded: &loading::Loaded) -> LoadReport {
        let t = loaded.model.load_timings();
        let r = &t.resources;
        LoadReport {
            tokenizer_s: loaded.tokenizer_secs,
            threads: t.threads,
            weights_s: t.weights_s,
            kernels_s: t.kernels_s,
            scratch_s: t.scratch_s,
            upload_wait_s: t.upload_wait_s,
            buffers: r.filled_buffers,
            buffer_bytes: r.filled_bytes,
            buffer_create_thread_s: r.create_s,
            buffer_fill_thread_s: r.fill_s,
            buffer_finish_thread_s: r.finish_s,
            pipelines: r.pipelines,
            pipeline_thread_s: r.pipeline_s,
        }
    }
}

/// What the timed rounds measure.
#[derive(Serialize)]
pub(crate) struct Speed {
    /// The chunk lengths the prompt was cut into.
    pub(crate) prefill_chunks: Vec<usize>,
    pub(crate) prefill_tok_s: Spread,
    /// The prefill speed of short prompts (a chat turn's length).
    pub(crate) short_prefill: Vec<ShortPrefill>,
    pub(crate) decode_tok_s: Spread,
    /// CPU microseconds per decode step recording and submitting it (not waiting for the GPU).
    pub(crate) decode_record_submit_us: Spread,
    /// CPU microseconds per decode token waiting for it.
    pub(crate) decode_wait_us: Spread,
    pub(crate) prefill: Work,
    pub(crate) decode: Work,
    pub(crate) quality_hash: String,
    pub(crate) tokens_identical_across_repeats: bool,
    pub(crate) kernel_times: Option<KernelTables>,
}

/// The prefill speed of a short prompt.
#[derive(Serialize)]
pub(crate) struct ShortPrefill {
    pub(crate) tokens: usize,
    pub(crate) tok_s: Spread,
}

pub(crate) fn print_report(r: &Report) {
    let a = &r.adapter;
    let m = &r.model;
    println!(
        "adapter: {} ({}, {}), limits {}, features {}",
        a.name,
        a.backend,
        a.device_type,
        a.limits,
        a.features.join(" ")
    );
    println!(
        "model: {}{}: {} layers, width {}, FFN {}, vocab {}, {} ({})",
        m.file,
        if m.synthetic { " (synthetic: random weights)" } else { "" },
        m.layers,
        m.width,
        m.ffn,
        m.vocab,
        indicatif::HumanBytes(m.tensor_bytes),
        m.types.join("/")
    );
    println!(
        "prompt {} tokens, generate {} tokens (greedy), {} repeats after a warm-up",
        r.prompt_tokens, r.gen_tokens, r.repeats
    );
    for run in &r.runs {
        println!(
            "\n[{}, limits {}] load {:.2} s, GPU memory {} (sum of buffer sizes: weights, scratch, one state)",
            run.path,
            run.limits,
            run.load_s,
            indicatif::HumanBytes(run.gpu_memory_bytes)
        );
        let l = &run.load;
        println!(
            "  load phases: open {:.2} s (once), tokenizer {:.2} s, weights {:.2} s on {} threads, pipelines {:.2} s, \
             scratch {:.2} s, upload wait {:.2} s",
            m.open_s, l.tokenizer_s, l.weights_s, l.threads, l.kernels_s, l.scratch_s, l.upload_wait_s
        );
        println!(
            "  load work (thread-seconds): {} buffers ({}): create {:.2} s, fill {:.2} s, finish {:.2} s; \
             {} pipelines compiled {:.2} s",
            l.buffers,
            indicatif::HumanBytes(l.buffer_bytes),
            l.buffer_create_thread_s,
            l.buffer_fill_thread_s,
            l.buffer_finish_thread_s,
            l.pipelines,
            l.pipeline_thread_s
        );
        if let Some(speed) = &run.speed {
            print_speed(speed, run.max_chunk);
        }
        if let Some(batch) = &run.batch {
            super::bench_batch::print(batch);
        }
    }
}

pub(crate) fn print_speed(run: &Speed, max_chunk: usize) {
    let s = |x: &Spread| format!("median {:9.1}  min {:9.1}  max {:9.1} tok/s", x.median, x.min, x.max);
    println!(
        "  prefill  {}  (chunks {:?}, at most {} tokens each)",
        s(&run.prefill_tok_s),
        run.prefill_chunks,
        max_chunk
    );
    for short in &run.short_prefill {
        println!("  {:<8} {}", format!("pp{}", short.tokens), s(&short.tok_s));
    }
    println!("  decode   {}", s(&run.decode_tok_s));
    let (cpu, wait) = (&run.decode_record_submit_us, &run.decode_wait_us);
    println!(
        "  decode CPU per token: record + submit median {:.1} us (min {:.1}, max {:.1}), \
         wait for the token median {:.1} us (min {:.1}, max {:.1})",
        cpu.median, cpu.min, cpu.max, wait.median, wait.min, wait.max
    );
    for (what, w) in [("prefill", &run.prefill), ("decode", &run.decode)] {
        println!(
            "  {what:<8} per token: {:.2} dispatches ({:.2} per layer), {:.3} passes, {:.3} submissions",
            w.dispatches_per_token, w.dispatches_per_layer, w.passes_per_token, w.submissions_per_token
        );
    }
    println!(
        "  quality hash {} (FNV-1a of the greedy tokens){}",
        run.quality_hash,
        if run.tokens_identical_across_repeats { "" } else { "; WARNING: tokens differed between repeats" }
    );
    match &run.kernel_times {
        None => println!("  (no per-kernel times: the adapter has no timestamps inside passes)"),
        Some(k) => {
            for (what, rows) in [
                ("one decode token", &k.decode),
                (&*format!("a prefill chunk of {} tokens", k.prefill_tokens), &k.prefill),
            ] {
                println!("  GPU time per kernel, {what}:");
                for row in rows {
                    let bandwidth = match row.gb_per_s {
                        Some(g) => format!("  {:>9} read  {g:>7.1} GB/s", indicatif::HumanBytes(row.bytes).to_string()),
                        None => String::new(),
                    };
                    println!(
                        "    {:<32} {:>5} x  {:>10.1} us  {:>5.1}%{bandwidth}",
                        row.kernel,
                        row.dispatches,
                        row.total_us,
                        row.share * 100.0
                    );
                }
            }
        }
    }
}
