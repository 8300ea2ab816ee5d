//! Token generation over a model and a state: prefill (with progress for long prompts), then one token
//! at a time.
//!
//! By default tokens are sampled on the GPU and fed straight back (rwkv-model's
//! [`rwkv_model::gpu::Generator`]); the CPU only reads the ids. Settings the GPU sampler has no
//! equivalent for (banned tokens, which chat needs for token 0) use the CPU sampler instead, which
//! reads the logits back and has the same semantics (see [`crate::sampling`]).

use anyhow::Result;
use gpu_core::RecorderStats;
use rwkv_model::gpu::{self, Logits, Model, State};

use crate::sampling::{CpuSampler, SamplerConfig};

/// Decode steps the GPU generator may queue ahead of the token being read.
const LOOKAHEAD: usize = 2;

enum Sampler<'m> {
    Gpu(Box<gpu::Generator<'m>>),
    /// With the logits after the last fed token.
    Cpu(CpuSampler, Option<Vec<f32>>),
}

pub struct Generator<'m> {
    model: &'m Model,
    state: &'m State,
    sampler: Sampler<'m>,
}

impl<'m> Generator<'m> {
    /// A generator continuing `state`: GPU sampling unless `cfg` bans tokens.
    pub fn new(model: &'m Model, state: &'m State, cfg: &SamplerConfig) -> Result<Generator<'m>> {
        let sampler = if cfg.banned.is_empty() {
            let gpu_cfg = gpu::SamplerConfig {
                temperature: cfg.temperature,
                top_p: cfg.top_p,
                top_k: cfg.top_k,
                presence_penalty: cfg.presence_penalty,
                frequency_penalty: cfg.frequency_penalty,
                penalty_decay: cfg.penalty_decay,
                seed: cfg.seed,
            };
            Sampler::Gpu(Box::new(model.generator(state, &gpu_cfg, LOOKAHEAD)?))
        } else {
            Sampler::Cpu(CpuSampler::new(cfg.clone(), model.hparams().vocab), None)
        };
        Ok(Generator { model, state, sampler })
    }

    /// Whether tokens are sampled on the GPU.
    pub fn on_gpu(&self) -> bool {
        matches!(self.sampler, Sampler::Gpu(_))
    }

    /// Feeds `tokens` (the state continues from wherever it is), calling `progress(done, total)` as
    /// parts complete. Call once, before the first [`Self::next_token`].
    pub fn prefill(&mut self, tokens: &[u32], progress: &mut dyn FnMut(usize, usize)) -> Result<()> {
        let Some((&last, head)) = tokens.split_last() else {
            anyhow::bail!("nothing to prefill");
        };
        // Everything but the last token through `forward`, one chunk of the model's per call
        // (for progress); the last one through the sampler, which needs its logits.
        let mut done = 0;
        while done < head.len() {
            let part = &head[done..done + self.model.chunk_len(head.len() - done)];
            self.model.forward(self.state, part, &Logits::At(vec![]))?;
            done += part.len();
            progress(done, tokens.len());
        }
        match &mut self.sampler {
            Sampler::Gpu(g) => g.prefill(&[last])?,
            Sampler::Cpu(_, logits) => *logits = self.model.forward(self.state, &[last], &Logits::Last)?.pop(),
        }
        progress(tokens.len(), tokens.len());
        Ok(())
    }

    /// The next token. On the CPU path it has already been fed to the state; on the GPU path the
    /// state runs up to [`LOOKAHEAD`] + 1 tokens ahead of (or one behind) the tokens returned.
    pub fn next_token(&mut self) -> Result<u32> {
        match &mut self.sampler {
            Sampler::Gpu(g) => Ok(g.next_token()?),
            Sampler::Cpu(sampler, logits) => {
                let l = logits.as_ref().ok_or_else(|| anyhow::anyhow!("prefill before the first token"))?;
                let token = sampler.sample(l);
                *logits = self.model.forward(self.state, &[token], &Logits::Last)?.pop();
                Ok(token)
            }
        }
    }

    /// What one GPU decode step records (one submission each), where sampling is on the GPU.
    pub fn step_stats(&self) -> Option<RecorderStats> {
        match &self.sampler {
            Sampler::Gpu(g) => Some(g.step_stats()),
            Sampler::Cpu(..) => None,
        }
    }
}
