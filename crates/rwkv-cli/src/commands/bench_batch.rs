//! `rwkv-cli bench --batch 1,8,32,64`: the batched engine's decode speed per batch size B
//! (aggregate and per sequence, the step time) with a quality hash per sequence, each checked
//! against the B = 1 hash of the same prompt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use rwkv_model::batch::{Batch, BatchOptions, SeqId};
use rwkv_model::gpu::{Model, SamplerConfig};
use serde::Serialize;

use super::bench::{bench_prompt, fnv1a};
use crate::progress;

/// Distinct prompts the sequences of a batch cycle through (sequence i gets prompt i mod this).
const PROMPTS: usize = 8;

/// One batch size's figures.
#[derive(Serialize)]
pub(crate) struct BatchRun {
    pub(crate) batch: usize,
    /// Tokens per second of all sequences together while all of them decode.
    pub(crate) aggregate_tok_s: f64,
    /// Tokens per second of one sequence.
    pub(crate) per_sequence_tok_s: f64,
    /// Wall milliseconds per decode step.
    pub(crate) step_ms: f64,
    /// Seconds from the first `add` to every sequence's first token (prefill and joining).
    pub(crate) first_tokens_s: f64,
    /// FNV-1a of each sequence's greedy tokens, in order.
    pub(crate) hashes: Vec<String>,
    /// Whether every hash equals the B = 1 hash of the same prompt.
    pub(crate) hashes_match_batch_of_one: bool,
}

/// What one batch run gave.
struct Outcome {
    tokens: Vec<Vec<u32>>,
    aggregate_tok_s: f64,
    step_ms: f64,
    first_tokens_s: f64,
}

/// The greedy tokens (`gen` per sequence) of `b` sequences decoded together, and the timings
/// from the step after which every sequence has its first token.
fn run_batch(model: &Arc<Model>, b: usize, prompts: &[Vec<u32>], gen: usize) -> Result<Outcome> {
    let mut batch = Batch::new(model.clone(), BatchOptions::new(b))?;
    let start = Instant::now();
    let mut ids: HashMap<SeqId, usize> = HashMap::new();
    for i in 0..b {
        ids.insert(batch.add(&prompts[i % prompts.len()], &SamplerConfig::GREEDY)?, i);
    }
    let mut tokens = vec![Vec::new(); b];
    let mut started: Option<Instant> = None;
    let (mut steps, mut timed_steps, mut produced) = (0usize, 0usize, 0usize);
    let limit = 100 * (gen + b + prompts.iter().map(Vec::len).sum::<usize>());
    while tokens.iter().any(|t| t.len() < gen) {
        for (id, token) in batch.step()? {
            let i = ids[&id];
            if tokens[i].len() < gen {
                tokens[i].push(token);
                produced += usize::from(started.is_some());
            }
        }
        steps += 1;
        if started.is_some() {
            timed_steps += 1;
        } else if tokens.iter().all(|t| !t.is_empty()) {
            started = Some(Instant::now());
        }
        if steps > limit {
            bail!("the batch of {b} stopped producing tokens");
        }
    }
    let t0 = started.expect("every sequence produced a token");
    let decode_s = t0.elapsed().as_secs_f64().max(1e-9);
    for id in ids.keys() {
        batch.remove(*id);
    }
    batch.step()?;
    Ok(Outcome {
        tokens,
        aggregate_tok_s: produced as f64 / decode_s,
        step_ms: 1e3 * decode_s / timed_steps.max(1) as f64,
        first_tokens_s: t0.duration_since(start).as_secs_f64(),
    })
}

/// Measures every size in `sizes` after a B = 1 run of each distinct prompt.
pub(crate) fn measure(model: &Arc<Model>, sizes: &[usize], prompt_tokens: usize, gen: usize) -> Result<Vec<BatchRun>> {
    let vocab = model.hparams().vocab;
    let base = bench_prompt(prompt_tokens, vocab);
    let prompts: Vec<Vec<u32>> = (0..PROMPTS)
        .map(|i| {
            let mut p = base.clone();
            p[0] = 1 + i as u32;
            p
        })
        .collect();
    let bar =
        progress::tokens_bar("batch bench", PROMPTS.min(sizes.iter().copied().max().unwrap_or(1)) + sizes.len(), 1);
    let mut alone = Vec::new();
    for p in prompts.iter().take(sizes.iter().copied().max().unwrap_or(1).min(PROMPTS)) {
        let run = run_batch(model, 1, std::slice::from_ref(p), gen)?;
        alone.push(fnv1a(&run.tokens[0]));
        bar.inc(1);
    }
    let mut runs = Vec::new();
    for &b in sizes {
        let run = run_batch(model, b, &prompts, gen)?;
        let hashes: Vec<u64> = run.tokens.iter().map(|t| fnv1a(t)).collect();
        runs.push(BatchRun {
            batch: b,
            aggregate_tok_s: run.aggregate_tok_s,
            per_sequence_tok_s: run.aggregate_tok_s / b as f64,
            step_ms: run.step_ms,
            first_tokens_s: run.first_tokens_s,
            hashes_match_batch_of_one: hashes.iter().enumerate().all(|(i, h)| *h == alone[i % PROMPTS]),
            hashes: hashes.iter().map(|h| format!("{h:016x}")).collect(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(runs)
}

pub(crate) fn print(runs: &[BatchRun]) {
    println!("\nbatched decode (greedy; sequence i continues prompt i mod {PROMPTS}):");
    println!(
        "  {:>5} {:>14} {:>14} {:>10} {:>12}  hashes = B=1",
        "B", "aggregate", "per sequence", "step", "first tokens"
    );
    for r in runs {
        println!(
            "  {:>5} {:>10.1} t/s {:>10.1} t/s {:>7.2} ms {:>10.2} s  {}",
            r.batch,
            r.aggregate_tok_s,
            r.per_sequence_tok_s,
            r.step_ms,
            r.first_tokens_s,
            if r.hashes_match_batch_of_one { "yes" } else { "NO" }
        );
    }
}
