//! [`Model`]: load an RWKV-7 GGUF onto the GPU and run it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use gpu_core::{Gpu, KernelTime, Timer};

use crate::gpu::chunk;
use crate::gpu::forward::{Ctx, Kernels, Rows};
use crate::gpu::linear::PrefillCoop;
use crate::gpu::scratch::Scratch;
use crate::gpu::state::State;
use crate::gpu::stats::{Counters, ForwardCounters};
use crate::gpu::timings::LoadTimings;
use crate::gpu::upload::{available_threads, load_session};
use crate::gpu::weights::{LoadProgress, Weights};
use crate::gpu::Dims;
use crate::{HParams, ModelError, ModelFile};

/// `f()` and the seconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let t = f();
    (t, start.elapsed().as_secs_f64())
}

/// Which implementation of the layer runs (the same math either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// LayerNorm + token shift in one kernel; for one token, the LoRA second stage inside the
    /// time-mix kernel.
    Fused,
    /// One operation per dispatch.
    Plain,
}

/// How [`Model::load`] builds the model; `Default` picks everything from the adapter.
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    /// `None`: pick from the adapter (fused everywhere at present).
    pub path: Option<Path>,
    /// The most tokens the caller allows in one prefill chunk; `None`: automatic (the model
    /// picks its chunk capacity from the adapter and the model's widths, see
    /// [`Model::max_chunk`]). The adapter's binding limits cap either.
    pub max_chunk: Option<usize>,
    /// Whether prefill may use tensor cores (cooperative matrices) where the device has them.
    pub prefill_coop: PrefillCoop,
    /// Threads that pack and upload the weights; `None`: one per core.
    pub load_threads: Option<usize>,
}

/// Which logits a forward call returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Those of the last token only.
    Last,
    /// Those of each listed position (indices into the tokens of this call), in order.
    At(Vec<usize>),
}

/// An RWKV-7 model on the GPU.
pub struct Model {
    pub(crate) gpu: Arc<Gpu>,
    pub(crate) hp: HParams,
    weights: Weights,
    pub(crate) kernels: Kernels,
    /// The activation buffers every recording shares: reachable only through
    /// [`Model::with_ctx`], which holds the lock while a caller records and submits, so work
    /// from several threads never interleaves inside them (what persists between submissions,
    /// such as a sequence's next token, belongs to the sequence).
    scratch: Mutex<Scratch>,
    max_tokens: usize,
    path: Path,
    counters: Counters,
    load_timings: LoadTimings,
}

impl Model {
    /// Uploads `file` to `gpu`, reporting progress, and builds every pipeline.
    pub fn load(
        gpu: Arc<Gpu>,
        file: &ModelFile,
        options: &ModelOptions,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Model, ModelError> {
        let hp = file.hparams().clone();
        if !hp.n_embd.is_multiple_of(64) || hp.head_size > 64 || !hp.head_size.is_multiple_of(4) {
            return Err(ModelError::Unsupported {
                what: format!(
                    "{}: width {} with head size {} (this engine needs a width that is a multiple of 64 and a \
                     head size of at most 64, a multiple of 4)",
                    file.path().display(),
                    hp.n_embd,
                    hp.head_size
                ),
            });
        }
        let start = Instant::now();
        let resources = gpu.resource_stats();
        let threads = options.load_threads.unwrap_or_else(available_threads).max(1);
        let session = load_session(&gpu, threads)?;
        let table_format = Weights::table_format(file)?;
        // The model-wide pipelines compile on their own thread while the weights upload.
        let ((weights, weights_s), (kernels, kernels_s)) = std::thread::scope(|s| {
            let kernels = s.spawn(|| timed(|| Kernels::new(&gpu, &hp, table_format)));
            let weights = timed(|| Weights::upload(&gpu, file, threads, options.prefill_coop, progress));
            (weights, kernels.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        });
        let (weights, kernels) = (weights?, kernels?);
        let capacity = chunk::chunk_capacity(gpu.caps(), &hp, options.max_chunk);
        let (scratch, scratch_s) = timed(|| Scratch::new(&gpu, &hp, capacity));
        let scratch = scratch?;
        let waiting = Instant::now();
        session.finish()?;
        gpu.flush_uploads(true)?;
        let load_timings = LoadTimings {
            threads,
            weights_s,
            kernels_s,
            scratch_s,
            upload_wait_s: waiting.elapsed().as_secs_f64(),
            total_s: start.elapsed().as_secs_f64(),
            resources: gpu.resource_stats().since(&resources),
        };
        let path = options.path.unwrap_or(Path::Fused);
        let max_tokens = scratch.max_tokens;
        Ok(Model {
            gpu,
            hp,
            weights,
            kernels,
            scratch: Mutex::new(scratch),
            max_tokens,
            path,
            counters: Counters::default(),
            load_timings,
        })
    }

    /// Where [`Model::load`] spent its time.
    pub fn load_timings(&self) -> LoadTimings {
        self.load_timings
    }

    /// The device the model lives on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// The model's hyperparameters.
    pub fn hparams(&self) -> &HParams {
        &self.hp
    }

    /// The kernel path in use (fused or plain).
    pub fn path(&self) -> Path {
        self.path
    }

    /// The most tokens one prefill chunk holds (the scratch capacity).
    pub fn max_chunk(&self) -> usize {
        self.max_tokens
    }

    /// The length of the next prefill chunk when `remaining` tokens are left to feed: prompts
    /// longer than [`Model::max_chunk`] are cut into nearly equal chunks.
    pub fn chunk_len(&self, remaining: usize) -> usize {
        chunk::chunk_len(remaining, self.max_tokens)
    }

    /// A fresh (zero) state for this model.
    pub fn new_state(&self) -> Result<State, ModelError> {
        State::new(&self.gpu, Dims { n_layer: self.hp.n_layer, c: self.hp.n_embd, head_size: self.hp.head_size })
    }

    /// Runs `f` with the recording context, holding the scratch lock: record and submit inside
    /// `f` (the GPU runs submissions in order, so the next holder's work starts after them).
    pub(crate) fn with_ctx<R>(&self, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
        let scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        f(&Ctx {
            gpu: &self.gpu,
            hp: &self.hp,
            weights: &self.weights,
            kernels: &self.kernels,
            scratch: &scratch,
            path: self.path,
        })
    }

    /// Feeds `tokens` in order, updating `state`, in chunks of [`Model::chunk_len`] tokens (one
    /// submission each). Returns the requested logits, `vocab` values per position.
    pub fn forward(&self, state: &State, tokens: &[u32], want: &Logits) -> Result<Vec<Vec<f32>>, ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.hp.vocab) {
            return Err(ModelError::TokenOutOfRange { token: bad, vocab: self.hp.vocab });
        }
        let positions: Vec<usize> = match want {
            Logits::Last => vec![tokens.len() - 1],
            Logits::At(p) => p.clone(),
        };
        if let Some(&p) = positions.iter().find(|&&p| p >= tokens.len()) {
            return Err(ModelError::PositionOutOfRange { position: p, tokens: tokens.len() });
        }
        self.with_ctx(|ctx| self.forward_locked(ctx, state, tokens, &positions))
    }

    fn forward_locked(
        &self,
        ctx: &Ctx<'_>,
        state: &State,
        tokens: &[u32],
        positions: &[usize],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        self.counters.call(tokens.len());
        let mut out = Vec::with_capacity(positions.len());
        let mut start = 0;
        while start < tokens.len() {
            // Cut chunks at the positions whose logits are wanted, so each is the last row of
            // a chunk or read from the chunk's rows in place.
            let end = start + self.chunk_len(tokens.len() - start);
            let chunk = &tokens[start..end];
            self.gpu.write(&ctx.scratch.tokens, 0, bytemuck::cast_slice(chunk));
            let mut rec = self.gpu.recorder();
            ctx.record_layers(&mut rec, chunk.len() as u32, ctx.scratch.tokens.all(), Rows::Sequence(state))?;
            let rows: Vec<usize> = positions.iter().filter(|&&p| p >= start && p < end).map(|&p| p - start).collect();
            // The chunk's layers, then the head of each wanted row (the first in the same
            // submission), each read back before the next overwrites the logits.
            let mut pending = Some(rec);
            for &row in &rows {
                let mut r = pending.take().unwrap_or_else(|| self.gpu.recorder());
                ctx.record_head(&mut r, row as u32)?;
                self.counters.submission(r.stats());
                r.submit();
                out.push(self.gpu.read_as::<f32>(&ctx.scratch.logits)?[..self.hp.vocab].to_vec());
            }
            if let Some(rec) = pending {
                self.counters.submission(rec.stats());
                rec.submit();
            }
            start = end;
        }
        Ok(out)
    }
    /// What the forward calls have recorded since load or the last [`Model::reset_counters`].
    pub fn counters(&self) -> ForwardCounters {
        self.counters.get()
    }

    /// Zeroes [`Model::counters`].
    pub fn reset_counters(&self) {
        self.counters.reset();
    }

    /// Bytes of the GPU buffers the model holds (weights and activation scratch; states are
    /// separate, see [`State::bytes`]).
    pub fn gpu_bytes(&self) -> u64 {
        self.weights.bytes() + self.with_ctx(|ctx| ctx.scratch.bytes())
    }

    /// Feeds `tokens` (at most `max_chunk`) and the head of the last one in ONE submission with
    /// `timer` attached, and returns the GPU time per kernel. Updates `state` like `forward`.
    pub fn profile(&self, state: &State, tokens: &[u32], timer: &mut Timer) -> Result<Vec<KernelTime>, ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if tokens.len() > self.max_tokens {
            return Err(ModelError::Unsupported {
                what: format!("profiling {} tokens in one chunk (at most {})", tokens.len(), self.max_tokens),
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.hp.vocab) {
            return Err(ModelError::TokenOutOfRange { token: bad, vocab: self.hp.vocab });
        }
        self.with_ctx(|ctx| {
            self.gpu.write(&ctx.scratch.tokens, 0, bytemuck::cast_slice(tokens));
            let mut rec = self.gpu.recorder().with_timer(timer);
            ctx.record_layers(&mut rec, tokens.len() as u32, ctx.scratch.tokens.all(), Rows::Sequence(state))?;
            ctx.record_head(&mut rec, tokens.len() as u32 - 1)?;
            rec.submit();
            Ok(timer.read(&self.gpu)?)
        })
    }
}
