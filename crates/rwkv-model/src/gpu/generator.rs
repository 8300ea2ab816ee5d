//! Generation with sampling on the GPU: each step's sampled token is written straight into the
//! next step's embedding input, so the CPU never waits for a token before recording the next
//! step. Token ids come back through small mapped staging buffers, `lookahead` steps behind.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Instant;

use gpu_core::{wgpu, GpuBuffer, Recorder, RecorderStats};
use kernels::sample::{initial_state, SampleBuffers, SampleParams};

use crate::gpu::forward::{Ctx, Rows};
use crate::gpu::state::State;
use crate::gpu::stats::DecodeTimes;
use crate::gpu::token_step::TokenStep;
use crate::gpu::Model;
use crate::ModelError;

/// How to pick each token (ChatRWKV semantics, spec §8): the one set of sampling settings,
/// and the one place their defaults live.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Probabilities are raised to `1/temperature` before sampling; 0 = greedy (the most likely
    /// token).
    pub temperature: f32,
    /// Nucleus sampling: keeps the most likely tokens whose cumulative probability first reaches
    /// `top_p` (in [0, 1]; 0 keeps only the most likely).
    pub top_p: f32,
    /// 0 = off.
    pub top_k: u32,
    /// Subtracted from the logit of every token seen so far in the sequence.
    pub presence_penalty: f32,
    /// Subtracted from a seen token's logit once per (decayed) occurrence.
    pub frequency_penalty: f32,
    /// Multiplies every occurrence count after each token.
    pub penalty_decay: f32,
    /// Seeds the sequence's random stream (one uniform draw per sampled token).
    pub seed: u64,
    /// Tokens never sampled, in any mode (at most [`SamplerConfig::MAX_BANNED`]); a `Vec` fits
    /// through `.into()`.
    pub banned: Cow<'static, [u32]>,
}

impl SamplerConfig {
    /// The most tokens `banned` may hold.
    pub const MAX_BANNED: usize = kernels::sample::MAX_BANNED;

    /// ChatRWKV's `PIPELINE_ARGS` defaults.
    pub const CHATRWKV: SamplerConfig = SamplerConfig {
        temperature: 1.0,
        top_p: 0.85,
        top_k: 0,
        presence_penalty: 0.2,
        frequency_penalty: 0.2,
        penalty_decay: 0.996,
        seed: 0,
        banned: Cow::Borrowed(&[]),
    };

    /// ChatRWKV's chat demo defaults: a tighter top-p, stronger penalties, and token 0 (the
    /// end-of-text separator) banned.
    pub const CHATRWKV_CHAT: SamplerConfig = SamplerConfig {
        temperature: 1.0,
        top_p: 0.3,
        top_k: 0,
        presence_penalty: 0.5,
        frequency_penalty: 0.5,
        penalty_decay: 0.996,
        seed: 0,
        banned: Cow::Borrowed(&[0]),
    };

    /// Always the most likely token (no penalties).
    pub const GREEDY: SamplerConfig = SamplerConfig {
        temperature: 0.0,
        top_p: 0.0,
        top_k: 0,
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        penalty_decay: 1.0,
        seed: 0,
        banned: Cow::Borrowed(&[]),
    };

    /// The kernel's parameters for a vocabulary of `vocab` tokens; fails (typed, naming the
    /// setting and the value) on a setting sampling gives no meaning to, more than
    /// [`Self::MAX_BANNED`] banned tokens, a banned token outside the vocabulary, or a ban of
    /// the whole vocabulary.
    pub fn params(&self, vocab: usize) -> Result<SampleParams, ModelError> {
        let params = SampleParams {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            penalty_decay: self.penalty_decay,
            ..SampleParams::PLAIN
        }
        .with_banned(&self.banned)?;
        params.validate(u32::try_from(vocab).unwrap_or(u32::MAX))?;
        Ok(params)
    }

    /// Checks these settings for a vocabulary of `vocab` tokens (see [`Self::params`]).
    pub fn validate(&self, vocab: usize) -> Result<(), ModelError> {
        self.params(vocab).map(|_| ())
    }
}

/// The sampler's GPU buffers, and the token it writes for the next step (each generator owns
/// its own: nothing of a sequence lives in the model's shared scratch between submissions).
struct SamplerBuffers {
    /// [1] u32: the sampled token, the next step's input.
    token: GpuBuffer,
    counts: GpuBuffer,
    seen: GpuBuffer,
    scratch: GpuBuffer,
    state: GpuBuffer,
    params: GpuBuffer,
}

impl SamplerBuffers {
    /// Records the head of row `row` of the chunk in the scratch and the sampler, which writes
    /// the token into the next step's input (`token`).
    fn record_head_and_sample(&self, ctx: &Ctx<'_>, rec: &mut Recorder<'_>, row: u32) -> Result<(), ModelError> {
        ctx.record_head(rec, row)?;
        let b = self;
        let s = ctx.scratch;
        ctx.kernels.sample.record(
            ctx.gpu,
            rec,
            1,
            &SampleBuffers {
                logits: s.logits.all(),
                counts: b.counts.all(),
                seen: b.seen.all(),
                scratch: b.scratch.all(),
                state: b.state.all(),
                out_token: b.token.all(),
                params: b.params.all(),
            },
        )?;
        Ok(())
    }
}

struct Pending {
    submission: wgpu::SubmissionIndex,
    staging: wgpu::Buffer,
    mapped: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

/// Generates tokens from a state; see [`Model::generator`].
pub struct Generator<'m> {
    model: &'m Model,
    state: &'m State,
    buffers: SamplerBuffers,
    /// One decode step's commands, built once: they die with the generator.
    step: TokenStep,
    pending: VecDeque<Pending>,
    spare: Vec<wgpu::Buffer>,
    lookahead: usize,
    started: bool,
    last_step: RecorderStats,
    times: DecodeTimes,
}

impl Model {
    /// A generator that continues `state`. `lookahead` is how many steps may be queued on the
    /// GPU ahead of the token the caller is reading: with 0 the state ends exactly before the
    /// last token returned (a chat feeds that one itself when the answer ends); 1-2 keeps the
    /// GPU busy while the CPU prints. Fails (typed) on settings `config` cannot hold for this
    /// vocabulary (see [`SamplerConfig::params`]).
    pub fn generator<'m>(
        &'m self,
        state: &'m State,
        config: &SamplerConfig,
        lookahead: usize,
    ) -> Result<Generator<'m>, ModelError> {
        let params = config.params(self.hp.vocab)?;
        let gpu = &self.gpu;
        let v = self.hp.vocab as u64;
        let buffers = SamplerBuffers {
            token: gpu.buffer("sampler/token", 4)?,
            counts: gpu.buffer("sampler/counts", v * 4)?,
            seen: gpu.buffer("sampler/seen", self.kernels.sample.row_bytes().seen)?,
            scratch: gpu.buffer("sampler/scratch", v * 4)?,
            state: gpu.buffer_from("sampler/state", &initial_state(config.seed))?,
            params: gpu.buffer_init("sampler/params", params.as_bytes())?,
        };
        let step = self.with_ctx(|ctx| {
            TokenStep::capture(ctx, state, buffers.token.all(), |rec| buffers.record_head_and_sample(ctx, rec, 0))
        })?;
        Ok(Generator {
            model: self,
            state,
            buffers,
            step,
            pending: VecDeque::new(),
            spare: Vec::new(),
            lookahead,
            started: false,
            last_step: RecorderStats::default(),
            times: DecodeTimes::default(),
        })
    }
}

impl Generator<'_> {
    /// Records the copy of the sampled token to a staging buffer after a step that sampled it,
    /// and submits.
    fn submit_step(&mut self, mut rec: Recorder<'_>) -> Result<(), ModelError> {
        let m = self.model;
        let staging = self.spare.pop().unwrap_or_else(|| {
            m.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("sampled token"),
                size: 4,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        // The staging copy comes after the pass: one compute pass per token.
        rec.copy_to_raw(&self.buffers.token, 0, &staging, 0, 4);
        self.last_step = rec.stats();
        let submission = rec.submit();
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.pending.push_back(Pending { submission, staging, mapped: rx });
        Ok(())
    }

    /// Feeds `prompt` (in chunks) and samples the first token. Call once, before [`Self::next_token`].
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(), ModelError> {
        let m = self.model;
        if prompt.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= m.hp.vocab) {
            return Err(ModelError::TokenOutOfRange { token: bad, vocab: m.hp.vocab });
        }
        let mut chunks: Vec<&[u32]> = Vec::new();
        let mut rest = prompt;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(m.chunk_len(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            m.with_ctx(|ctx| {
                let mut rec = m.gpu.recorder();
                if last && chunk.len() == 1 {
                    // Exactly a decode step.
                    m.gpu.write(&self.buffers.token, 0, bytemuck::cast_slice(chunk));
                    self.step.record(ctx, &mut rec, self.state);
                } else {
                    m.gpu.write(&ctx.scratch.tokens, 0, bytemuck::cast_slice(chunk));
                    let tokens = ctx.scratch.tokens.all();
                    ctx.record_layers(&mut rec, chunk.len() as u32, tokens, Rows::Sequence(self.state))?;
                    if last {
                        self.buffers.record_head_and_sample(ctx, &mut rec, chunk.len() as u32 - 1)?;
                    }
                }
                if last {
                    self.submit_step(rec)
                } else {
                    rec.submit();
                    Ok(())
                }
            })?;
        }
        self.started = true;
        Ok(())
    }

    /// The next sampled token. Queues further steps (up to `lookahead`) before waiting.
    pub fn next_token(&mut self) -> Result<u32, ModelError> {
        if !self.started {
            return Err(ModelError::EmptyInput);
        }
        let m = self.model;
        while self.pending.len() <= self.lookahead {
            let start = Instant::now();
            m.with_ctx(|ctx| {
                let mut rec = m.gpu.recorder();
                self.step.record(ctx, &mut rec, self.state);
                self.submit_step(rec)
            })?;
            self.times.steps += 1;
            self.times.record_submit += start.elapsed();
        }
        let start = Instant::now();
        let p = self.pending.pop_front().expect("a step is pending");
        m.gpu
            .device
            .poll(wgpu::PollType::Wait { submission_index: Some(p.submission), timeout: None })
            .map_err(|e| gpu_core::GpuError::Submit(e.to_string()))?;
        p.mapped
            .recv()
            .map_err(|e| gpu_core::GpuError::Submit(e.to_string()))?
            .map_err(|e| gpu_core::GpuError::Submit(e.to_string()))?;
        let token = {
            let view = p.staging.get_mapped_range(..).map_err(|e| gpu_core::GpuError::Submit(e.to_string()))?;
            u32::from_le_bytes(view[..4].try_into().unwrap())
        };
        p.staging.unmap();
        self.spare.push(p.staging);
        self.times.tokens += 1;
        self.times.wait += start.elapsed();
        Ok(token)
    }

    /// What the last recorded step contained (dispatches, compute passes, copies); a decode
    /// step after the first [`Self::next_token`]. Each step is one submission.
    pub fn step_stats(&self) -> RecorderStats {
        self.last_step
    }

    /// The CPU time of the decode steps so far: recording and submitting them, and waiting for
    /// their tokens.
    pub fn decode_times(&self) -> DecodeTimes {
        self.times
    }

    /// Steps queued on the GPU beyond the tokens returned so far (they have advanced the
    /// state: a generator with lookahead leaves the state that many tokens further on).
    pub fn queued(&self) -> usize {
        self.pending.len()
    }
}
