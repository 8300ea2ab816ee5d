//! The batched engine: every sequence gets exactly the tokens it gets alone, whatever the batch
//! size and the order in which sequences join and leave; greedy sequences match the CPU
//! reference; the prefix cache reuses states; nothing grows per sequence; generators on one model
//! in several threads do not interfere.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use gguf_file::GgmlType;
use gpu_core::{ContextOptions, Gpu};
use rwkv_model::batch::{Batch, BatchOptions, SeqId};
use rwkv_model::gpu::{Model, ModelOptions, Path, SamplerConfig};
use rwkv_model::reference::RefModel;
use rwkv_model::{ModelError, ModelFile};

fn tiny_file(tag: &str) -> ModelFile {
    let path = std::env::temp_dir().join(format!("rwkv-batch-{tag}-{}.gguf", std::process::id()));
    common::build(&common::gpu_tiny_hparams(), GgmlType::F32, GgmlType::F32).write_file(&path).unwrap();
    let file = ModelFile::open(&path).unwrap();
    std::fs::remove_file(&path).ok();
    file
}

fn load(file: &ModelFile, path: Path) -> Arc<Model> {
    load_chunk(file, path, 8)
}

fn load_chunk(file: &ModelFile, path: Path, max_chunk: usize) -> Arc<Model> {
    let gpu = Arc::new(Gpu::new(&ContextOptions::default()).expect("a GPU adapter"));
    let options = ModelOptions { path: Some(path), max_chunk: Some(max_chunk), ..ModelOptions::default() };
    Arc::new(Model::load(gpu, file, &options, &mut |_| {}).unwrap())
}

/// xorshift64*: the schedules' randomness, reproducible from a seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
struct Job {
    prompt: Vec<u32>,
    config: SamplerConfig,
    tokens: usize,
}

fn random_job(rng: &mut Rng, vocab: u64) -> Job {
    let len = 1 + rng.below(9) as usize;
    let prompt = (0..len).map(|_| rng.below(vocab) as u32).collect();
    let config = match rng.below(3) {
        0 => SamplerConfig::GREEDY,
        1 => SamplerConfig { seed: rng.next(), ..SamplerConfig::CHATRWKV },
        _ => SamplerConfig {
            seed: rng.next(),
            temperature: 1.5,
            top_p: 1.0,
            banned: vec![3].into(),
            ..SamplerConfig::CHATRWKV
        },
    };
    Job { prompt, config, tokens: 1 + rng.below(6) as usize }
}

/// Runs `jobs` through `batch`, starting each when the schedule says so and removing it once it
/// has its tokens; returns each job's tokens.
fn run_schedule(batch: &mut Batch, jobs: &[Job], rng: &mut Rng) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); jobs.len()];
    let mut by_id: HashMap<SeqId, usize> = HashMap::new();
    let mut next = 0;
    let mut idle_steps = 0;
    while next < jobs.len() || !by_id.is_empty() {
        // Join zero or more jobs where there is room.
        while next < jobs.len() && batch.len() < batch.max_batch() && rng.below(2) == 0 {
            let id = batch.add(&jobs[next].prompt, &jobs[next].config).unwrap();
            by_id.insert(id, next);
            next += 1;
        }
        for (id, token) in batch.step().unwrap() {
            let j = by_id[&id];
            out[j].push(token);
            if out[j].len() == jobs[j].tokens {
                batch.remove(id);
                by_id.remove(&id);
            }
        }
        idle_steps += 1;
        assert!(idle_steps < 10_000, "the schedule does not end");
    }
    out
}

fn alone(model: &Arc<Model>, job: &Job) -> Vec<u32> {
    let mut batch = Batch::new(model.clone(), BatchOptions::new(1)).unwrap();
    run_schedule(&mut batch, std::slice::from_ref(job), &mut Rng(1)).pop().unwrap()
}

#[test]
fn every_sequence_gets_its_tokens_alone_for_any_batch_size_and_schedule() {
    let file = tiny_file("schedules");
    for path in [Path::Fused, Path::Plain] {
        let model = load(&file, path);
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let jobs: Vec<Job> = (0..7).map(|_| random_job(&mut rng, 16)).collect();
            let b = 1 + rng.below(5) as usize;
            let options = BatchOptions { prefill_chunk: Some(1 + rng.below(4) as usize), ..BatchOptions::new(b) };
            let mut batch = Batch::new(model.clone(), options).unwrap();
            let got = run_schedule(&mut batch, &jobs, &mut rng);
            for (j, job) in jobs.iter().enumerate() {
                assert_eq!(got[j].len(), job.tokens);
                assert_eq!(got[j], alone(&model, job), "{path:?}, schedule {seed}, B = {b}, job {j}: {job:?}");
            }
            assert!(batch.is_empty());
        }
    }
}

#[test]
fn twenty_rows_at_once_give_each_sequence_its_tokens_alone() {
    // Past 16 rows the projections' tiles change shape; a row's arithmetic must not.
    let file = tiny_file("wide");
    let model = load_chunk(&file, Path::Fused, 24);
    let mut rng = Rng(0x5eed);
    let jobs: Vec<Job> = (0..20).map(|_| Job { tokens: 5, ..random_job(&mut rng, 16) }).collect();
    let options = BatchOptions { prefill_chunk: Some(4), ..BatchOptions::new(20) };
    let mut batch = Batch::new(model.clone(), options).unwrap();
    let ids: Vec<SeqId> = jobs.iter().map(|j| batch.add(&j.prompt, &j.config).unwrap()).collect();
    let mut got = vec![Vec::new(); jobs.len()];
    let mut widest = 0;
    while got.iter().any(|g| g.len() < 5) {
        let step = batch.step().unwrap();
        widest = widest.max(step.len());
        for (id, token) in step {
            let j = ids.iter().position(|&i| i == id).unwrap();
            got[j].push(token);
        }
    }
    assert_eq!(widest, 20, "every sequence decodes in one step");
    for (j, job) in jobs.iter().enumerate() {
        got[j].truncate(5);
        assert_eq!(got[j], alone(&model, job), "job {j}: {job:?}");
    }
}

#[test]
fn greedy_sequences_decoded_together_match_the_cpu_reference() {
    let file = tiny_file("reference");
    let reference = RefModel::from_file(&file).unwrap();
    let model = load(&file, Path::Fused);
    let prompts: [&[u32]; 4] = [&[3], &[3, 11], &[1, 2, 3, 4, 5, 6, 7, 8, 9], &[15, 0, 7]];
    let jobs: Vec<Job> =
        prompts.iter().map(|p| Job { prompt: p.to_vec(), config: SamplerConfig::GREEDY, tokens: 4 }).collect();
    let mut batch = Batch::new(model, BatchOptions { prefill_chunk: Some(3), ..BatchOptions::new(4) }).unwrap();
    let got = run_schedule(&mut batch, &jobs, &mut Rng(7));
    for (job, got) in jobs.iter().zip(got) {
        assert_eq!(got, common::reference_greedy(&reference, &job.prompt, 4), "prompt {:?}", job.prompt);
    }
}

#[test]
fn a_conversation_that_continues_starts_from_the_cached_state() {
    let file = tiny_file("cache");
    let model = load(&file, Path::Fused);
    let options = BatchOptions { cache_bytes: 1 << 20, ..BatchOptions::new(2) };
    let mut batch = Batch::new(model.clone(), options).unwrap();
    let first = Job { prompt: vec![1, 2, 3, 4, 5, 6], config: SamplerConfig::GREEDY, tokens: 3 };
    let answer = run_schedule(&mut batch, std::slice::from_ref(&first), &mut Rng(3)).pop().unwrap();
    let stats = batch.cache_stats();
    assert_eq!((stats.hits, stats.misses), (0, 1));
    // Kept: the state after the prompt but its last token, and the state at the removal: the
    // step after the last token read back had already consumed it (tokens are read one step
    // late), so the whole conversation so far.
    assert_eq!(stats.entries, 2);

    // The next turn: the whole conversation so far, then new tokens.
    let mut prompt = first.prompt.clone();
    prompt.extend(&answer);
    prompt.extend([9, 10]);
    let second = Job { prompt, config: SamplerConfig::GREEDY, tokens: 3 };
    let cached = run_schedule(&mut batch, std::slice::from_ref(&second), &mut Rng(3)).pop().unwrap();
    let stats = batch.cache_stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    assert_eq!(stats.tokens_reused, (first.prompt.len() + answer.len()) as u64);
    // The same tokens as a batch without the cache.
    assert_eq!(cached, alone(&model, &second));

    // A budget for one state: the older entry is evicted.
    let one = model.new_state().unwrap().bytes();
    let mut small = Batch::new(model.clone(), BatchOptions { cache_bytes: one, ..BatchOptions::new(1) }).unwrap();
    run_schedule(&mut small, std::slice::from_ref(&first), &mut Rng(3));
    let s = small.cache_stats();
    assert_eq!((s.entries, s.bytes, s.evictions), (1, one, 1));
}

#[test]
fn bad_requests_get_typed_errors() {
    let file = tiny_file("errors");
    let model = load(&file, Path::Fused);
    let mut batch = Batch::new(model.clone(), BatchOptions::new(1)).unwrap();
    assert!(matches!(batch.add(&[], &SamplerConfig::GREEDY), Err(ModelError::EmptyInput)));
    assert!(matches!(batch.add(&[16], &SamplerConfig::GREEDY), Err(ModelError::TokenOutOfRange { token: 16, .. })));
    let bad = SamplerConfig { top_p: 2.0, ..SamplerConfig::CHATRWKV };
    assert!(batch.add(&[1], &bad).is_err());
    let id = batch.add(&[1], &SamplerConfig::GREEDY).unwrap();
    assert!(matches!(batch.add(&[1], &SamplerConfig::GREEDY), Err(ModelError::BatchFull { max: 1 })));
    batch.remove(id);
    batch.remove(id);
    assert!(batch.add(&[1], &SamplerConfig::GREEDY).is_ok());
    assert!(Batch::new(model.clone(), BatchOptions::new(0)).is_err());
    assert!(Batch::new(model.clone(), BatchOptions::new(model.max_chunk() + 1)).is_err());
}

#[test]
fn a_thousand_sequences_leave_the_live_buffers_where_they_started() {
    let file = tiny_file("memory");
    let model = load(&file, Path::Fused);
    let gpu = model.gpu().clone();
    for cache_bytes in [0, 3 * model.new_state().unwrap().bytes()] {
        let mut batch = Batch::new(model.clone(), BatchOptions { cache_bytes, ..BatchOptions::new(4) }).unwrap();
        let mut rng = Rng(11);
        let jobs = |n: usize, rng: &mut Rng| -> Vec<Job> { (0..n).map(|_| random_job(rng, 16)).collect() };
        // Warm up: every row count's step is captured, the cache fills.
        let warm = jobs(40, &mut rng);
        run_schedule(&mut batch, &warm, &mut rng);
        gpu.wait().unwrap();
        let base = gpu.live_buffers();
        let many = jobs(1000, &mut rng);
        run_schedule(&mut batch, &many, &mut rng);
        gpu.wait().unwrap();
        let live = gpu.live_buffers();
        assert!(live.buffers <= base.buffers, "cache {cache_bytes}: {live:?} against {base:?}");
        assert!(live.bytes <= base.bytes, "cache {cache_bytes}: {live:?} against {base:?}");
        assert!(batch.cache_stats().bytes <= cache_bytes);
    }
}

#[test]
fn generators_on_one_model_in_several_threads_do_not_interfere() {
    let file = tiny_file("threads");
    let model = load(&file, Path::Fused);
    let prompts: Vec<Vec<u32>> = (0..4).map(|i| vec![i, 2 * i + 1, 7]).collect();
    let run = |prompt: &[u32], seed: u64| -> Vec<u32> {
        let state = model.new_state().unwrap();
        let config = SamplerConfig { seed, ..SamplerConfig::CHATRWKV };
        let mut g = model.generator(&state, &config, 1).unwrap();
        g.prefill(prompt).unwrap();
        (0..24).map(|_| g.next_token().unwrap()).collect()
    };
    let solo: Vec<Vec<u32>> = prompts.iter().enumerate().map(|(i, p)| run(p, i as u64)).collect();
    let together: Vec<Vec<u32>> = std::thread::scope(|s| {
        let handles: Vec<_> = prompts.iter().enumerate().map(|(i, p)| s.spawn(move || run(p, i as u64))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(together, solo);
}
