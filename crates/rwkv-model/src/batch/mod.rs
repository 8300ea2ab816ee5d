//! Many sequences at once: [`Batch`] decodes up to B sequences with one set of dispatches per
//! step (each weight read once for all of them), lets sequences join and leave between any two
//! steps, prefills a joining prompt in chunks interleaved with the others' decode steps, and
//! starts prompts from the longest cached prefix state.
//!
//! Row `r` of a decode step advances slot `r` of a `StatePool`; a free row in the middle
//! keeps running on a zeroed state (its results are ignored), so no row ever moves. A joining
//! sequence is prefilled up to its last prompt token in a state of its own, copied into a free
//! slot, and joins with that last token as its row's input: its first token is sampled by the
//! batched step like every other. Each row's projections use the same kernel whatever the
//! number of rows (`KernelChoice::SameForAnyCount`), so a sequence's tokens do not depend on
//! what else runs. Sampled tokens stay on the GPU as the next step's input and are read back one
//! step late, so the CPU never waits for the step it has just submitted.

mod cache;
mod rows;

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc, Arc};

use gpu_core::{wgpu, DispatchList};
use kernels::sample::SampleParams;

pub use cache::CacheStats;

use crate::gpu::forward::{Ctx, Rows};
use crate::gpu::state::State;
use crate::gpu::state_pool::StatePool;
use crate::gpu::{Model, SamplerConfig};
use crate::ModelError;
use cache::PrefixCache;
use rows::RowBuffers;

/// How a [`Batch`] is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// The most sequences decoded together (B).
    pub max_batch: usize,
    /// GPU bytes the prefix-state cache may hold (0: no cache).
    pub cache_bytes: u64,
    /// The most prompt tokens prefilled in one step, over all joining sequences (`None`: the
    /// model's chunk). Smaller budgets keep the running sequences' steps short while prompts join.
    pub prefill_chunk: Option<usize>,
}

impl BatchOptions {
    /// `max_batch` sequences, no prefix cache, the model's prefill chunk.
    pub fn new(max_batch: usize) -> BatchOptions {
        BatchOptions { max_batch, cache_bytes: 0, prefill_chunk: None }
    }
}

/// A sequence of a [`Batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqId(u64);

enum Phase {
    /// Being prefilled into its own state: `fed` prompt tokens are in it.
    Joining { state: State, fed: usize },
    /// Decoding in row `row`.
    Decoding { row: usize },
}

struct Seq {
    prompt: Vec<u32>,
    params: SampleParams,
    seed: u64,
    phase: Phase,
    /// Tokens read back so far.
    generated: Vec<u32>,
    /// Decode steps submitted with this sequence in them.
    steps: usize,
}

struct PendingStep {
    submission: wgpu::SubmissionIndex,
    staging: wgpu::Buffer,
    mapped: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
    /// Who was in each row of the step.
    rows: Vec<Option<SeqId>>,
}

/// Steps kept in flight beyond the one being read back.
const LOOKAHEAD: usize = 1;

/// Up to B sequences decoded together; see the module documentation.
pub struct Batch {
    model: Arc<Model>,
    max_batch: usize,
    prefill_chunk: usize,
    pool: StatePool,
    rows: RowBuffers,
    /// Joining prompts' chunks of one step, each at a multiple of 64 tokens.
    prefill_tokens: gpu_core::GpuBuffer,
    /// The decode step for n rows (n = the highest occupied row + 1), captured on first use.
    steps: HashMap<u32, DispatchList>,
    slots: Vec<Option<SeqId>>,
    seqs: HashMap<SeqId, Seq>,
    joining: VecDeque<SeqId>,
    pending: VecDeque<PendingStep>,
    cache: PrefixCache<State>,
    spare_states: Vec<State>,
    spare_staging: Vec<wgpu::Buffer>,
    next_id: u64,
}

impl Batch {
    /// A batch of up to `options.max_batch` sequences on `model` (at least 1, at most the
    /// model's chunk capacity [`Model::max_chunk`]).
    pub fn new(model: Arc<Model>, options: BatchOptions) -> Result<Batch, ModelError> {
        let b = options.max_batch;
        if b == 0 || b > model.max_chunk() {
            return Err(ModelError::Unsupported {
                what: format!("a batch of {b} sequences (this model and adapter allow 1 to {})", model.max_chunk()),
            });
        }
        let dims = model.new_state()?.dims();
        let pool = StatePool::new(model.gpu(), dims, b)?;
        let vocab = model.hparams().vocab;
        let rows = RowBuffers::new(model.gpu(), b, vocab, model.kernels.sample.row_bytes().seen)?;
        let prefill_chunk = options.prefill_chunk.unwrap_or(usize::MAX).clamp(1, model.max_chunk());
        let prefill_tokens = model.gpu().buffer("batch/prefill_tokens", (prefill_chunk + 64 * b) as u64 * 4)?;
        Ok(Batch {
            model,
            max_batch: b,
            prefill_chunk,
            pool,
            rows,
            prefill_tokens,
            steps: HashMap::new(),
            slots: vec![None; b],
            seqs: HashMap::new(),
            joining: VecDeque::new(),
            pending: VecDeque::new(),
            cache: PrefixCache::new(options.cache_bytes),
            spare_states: Vec::new(),
            spare_staging: Vec::new(),
            next_id: 0,
        })
    }

    /// The model the batch runs.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// B: the most sequences decoded at once.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Sequences added and not removed (joining or decoding).
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether no sequence is in the batch.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// What the prefix cache has done.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// GPU bytes the batch holds besides the model (state slots, per-row buffers, cached
    /// states).
    pub fn gpu_bytes(&self) -> u64 {
        self.pool.bytes() + self.rows.bytes() + self.cache.stats().bytes
    }

    fn take_state(&mut self) -> Result<State, ModelError> {
        match self.spare_states.pop() {
            Some(s) => Ok(s),
            None => self.model.new_state(),
        }
    }

    fn give_back_state(&mut self, state: State) {
        if self.spare_states.len() < 2 {
            self.spare_states.push(state);
        }
    }

    /// Adds a sequence that continues `prompt` (at least one token) with `config`: it is
    /// prefilled inside later [`Batch::step`]s, from the longest cached prefix. Fails (typed) on
    /// an empty prompt, a token outside the vocabulary, settings `config` cannot hold, or a
    /// full batch ([`ModelError::BatchFull`]).
    pub fn add(&mut self, prompt: &[u32], config: &SamplerConfig) -> Result<SeqId, ModelError> {
        let vocab = self.model.hparams().vocab;
        if prompt.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= vocab) {
            return Err(ModelError::TokenOutOfRange { token: bad, vocab });
        }
        let params = config.params(vocab)?;
        if self.seqs.len() >= self.max_batch {
            return Err(ModelError::BatchFull { max: self.max_batch });
        }
        let state = self.take_state()?;
        let gpu = self.model.gpu().clone();
        let fed = match self.cache.lookup(prompt, prompt.len() - 1) {
            Some((cached, len)) => {
                let mut rec = gpu.recorder();
                cached.record_copy(&mut rec, &state);
                rec.submit();
                len
            }
            None => {
                state.reset(&gpu);
                0
            }
        };
        let id = SeqId(self.next_id);
        self.next_id += 1;
        let seq = Seq {
            prompt: prompt.to_vec(),
            params,
            seed: config.seed,
            phase: Phase::Joining { state, fed },
            generated: Vec::new(),
            steps: 0,
        };
        self.seqs.insert(id, seq);
        self.joining.push_back(id);
        Ok(id)
    }

    /// Ends a sequence at any time: its tokens not yet returned are dropped and its row is
    /// free for the next [`Batch::add`]. With the cache on, a decoding sequence's state is
    /// kept under the tokens it has consumed. Unknown ids are ignored.
    pub fn remove(&mut self, id: SeqId) {
        let Some(seq) = self.seqs.remove(&id) else { return };
        match seq.phase {
            Phase::Joining { state, .. } => {
                self.joining.retain(|&j| j != id);
                self.give_back_state(state);
            }
            Phase::Decoding { row } => {
                let gpu = self.model.gpu().clone();
                let mut rec = gpu.recorder();
                // The state has consumed the prompt and all but the last sampled token of
                // each step it ran in.
                let consumed = seq.steps.saturating_sub(1);
                if self.cache.enabled() && seq.generated.len() >= consumed {
                    let key: Vec<u32> = seq.prompt.iter().chain(&seq.generated[..consumed]).copied().collect();
                    if !self.cache.contains(&key) {
                        if let Ok(saved) = self.model.new_state() {
                            self.pool.record_save(&mut rec, row, &saved);
                            let bytes = saved.bytes();
                            drop(self.cache.insert(key, saved, bytes));
                        }
                    }
                }
                self.pool.record_clear(&mut rec, row);
                let idle = SamplerConfig::GREEDY.params(self.model.hparams().vocab).expect("greedy settings are valid");
                self.rows.record_reset(&gpu, &mut rec, row, &idle, 0, 0);
                rec.submit();
                self.slots[row] = None;
            }
        }
    }

    /// One step: prefill chunks of joining sequences (in the order they were added, up to
    /// [`BatchOptions::prefill_chunk`] tokens in all; each joins the decoding rows once its
    /// prompt is in), then one decode step of every decoding sequence.
    /// Returns the tokens read back since the last call, in order, as `(sequence, token)`:
    /// those of the previous step (the one just submitted is read by the next call), or all
    /// that are left when nothing decodes. Empty when nothing runs.
    pub fn step(&mut self) -> Result<Vec<(SeqId, u32)>, ModelError> {
        let model = Arc::clone(&self.model);
        let decoded = model.with_ctx(|ctx| self.record_and_submit(ctx))?;
        let mut out = Vec::new();
        while self.pending.len() > LOOKAHEAD || (!decoded && !self.pending.is_empty()) {
            self.read_oldest(&mut out)?;
        }
        Ok(out)
    }

    /// Records the step; returns whether it decoded.
    fn record_and_submit(&mut self, ctx: &Ctx<'_>) -> Result<bool, ModelError> {
        let gpu = ctx.gpu;
        let mut rec = gpu.recorder();
        let prefilled = !self.joining.is_empty();
        self.prefill_and_join(ctx, &mut rec)?;
        let n = self.slots.iter().rposition(Option::is_some).map_or(0, |i| i + 1) as u32;
        if n == 0 {
            if prefilled {
                rec.submit();
            }
            return Ok(false);
        }
        if !self.steps.contains_key(&n) {
            let list = DispatchList::capture(gpu, |r| {
                ctx.record_layers(r, n, self.rows.tokens.range(0, n as u64 * 4), Rows::Independent(&self.pool))?;
                ctx.record_head_rows(r, n, self.rows.logits(n))?;
                ctx.kernels.sample.record(gpu, r, n, &self.rows.sample_buffers(n))?;
                Ok::<_, ModelError>(())
            })?;
            self.steps.insert(n, list);
        }
        rec.replay(&self.steps[&n]);
        let bytes = n as u64 * 4;
        let staging = match self.spare_staging.iter().position(|b| b.size() >= bytes) {
            Some(i) => self.spare_staging.swap_remove(i),
            None => gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("batch tokens"),
                size: self.max_batch as u64 * 4,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        rec.copy_to_raw(&self.rows.tokens, 0, &staging, 0, bytes);
        let rows = self.slots[..n as usize].to_vec();
        for id in rows.iter().flatten() {
            if let Some(seq) = self.seqs.get_mut(id) {
                seq.steps += 1;
            }
        }
        let submission = rec.submit();
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.pending.push_back(PendingStep { submission, staging, mapped: rx, rows });
        Ok(true)
    }

    /// Feeds joining sequences' prompts, in order, up to `prefill_chunk` tokens in all (each
    /// sequence's chunk at its own place in `prefill_tokens`), and moves every sequence whose
    /// prompt is in but its last token into a free row, with that token as the row's input.
    fn prefill_and_join(&mut self, ctx: &Ctx<'_>, rec: &mut gpu_core::Recorder<'_>) -> Result<(), ModelError> {
        let mut budget = self.prefill_chunk;
        let mut offset = 0u64;
        let mut i = 0;
        while i < self.joining.len() {
            let id = self.joining[i];
            let seq = self.seqs.get_mut(&id).expect("a joining sequence is known");
            let Phase::Joining { state, fed } = &mut seq.phase else {
                unreachable!("only joining sequences wait to join");
            };
            let target = seq.prompt.len() - 1;
            if *fed < target && budget > 0 {
                let len = self.model.chunk_len(target - *fed).min(budget);
                let chunk = &seq.prompt[*fed..*fed + len];
                ctx.gpu.write(&self.prefill_tokens, offset * 4, bytemuck::cast_slice(chunk));
                let tokens = self.prefill_tokens.range(offset * 4, len as u64 * 4);
                ctx.record_layers(rec, len as u32, tokens, Rows::Sequence(state))?;
                *fed += len;
                budget -= len;
                // Bindings start at multiples of 256 bytes.
                offset += (len as u64).next_multiple_of(64);
            }
            if *fed < target {
                i += 1;
                continue;
            }
            let row =
                self.slots.iter().position(Option::is_none).expect("a batch never holds more sequences than rows");
            if self.cache.enabled() && target > 0 && !self.cache.contains(&seq.prompt[..target]) {
                if let Ok(saved) = self.model.new_state() {
                    state.record_copy(rec, &saved);
                    let bytes = saved.bytes();
                    drop(self.cache.insert(seq.prompt[..target].to_vec(), saved, bytes));
                }
            }
            self.pool.record_load(rec, row, state);
            self.rows.record_reset(ctx.gpu, rec, row, &seq.params, seq.seed, seq.prompt[target]);
            let Phase::Joining { state, .. } = std::mem::replace(&mut seq.phase, Phase::Decoding { row }) else {
                unreachable!("matched above");
            };
            self.slots[row] = Some(id);
            self.joining.remove(i);
            self.give_back_state(state);
        }
        Ok(())
    }

    /// Waits for the oldest pending step and appends its tokens of live sequences to `out`.
    fn read_oldest(&mut self, out: &mut Vec<(SeqId, u32)>) -> Result<(), ModelError> {
        let p = self.pending.pop_front().expect("a step is pending");
        let gpu = self.model.gpu();
        let failed = |e: String| ModelError::Gpu(gpu_core::GpuError::Submit(e));
        gpu.device
            .poll(wgpu::PollType::Wait { submission_index: Some(p.submission), timeout: None })
            .map_err(|e| failed(e.to_string()))?;
        p.mapped.recv().map_err(|e| failed(e.to_string()))?.map_err(|e| failed(e.to_string()))?;
        {
            let view = p.staging.get_mapped_range(..(p.rows.len() as u64 * 4)).map_err(|e| failed(e.to_string()))?;
            let tokens: &[u32] = bytemuck::cast_slice(&view);
            for (row, id) in p.rows.iter().enumerate() {
                let Some(id) = id else { continue };
                if let Some(seq) = self.seqs.get_mut(id) {
                    seq.generated.push(tokens[row]);
                    out.push((*id, tokens[row]));
                }
            }
        }
        p.staging.unmap();
        self.spare_staging.push(p.staging);
        Ok(())
    }
}
