//! Token generation over a model and a state: prefill, then one token at a time. Each returned token
//! has already been fed, so the state always holds everything generated (what chat needs to carry a
//! conversation on).
//!
//! This is the CLI's stand-in for the GPU-fed generator of rwkv-model: it reads the logits back and
//! samples on the CPU with the GPU sampler's semantics. Only this file changes when that API lands.

use anyhow::Result;
use rwkv_model::gpu::{Logits, Model, State};

use crate::sampling::{CpuSampler, SamplerConfig};

/// Tokens per `forward` call in a prefill (the model splits each call into its own chunks); the
/// progress callback runs after each.
const PREFILL_CALL_TOKENS: usize = 256;

pub struct Generator<'m> {
    model: &'m Model,
    state: &'m State,
    sampler: CpuSampler,
    /// Logits after the last fed token.
    logits: Option<Vec<f32>>,
}

impl<'m> Generator<'m> {
    pub fn new(model: &'m Model, state: &'m State, cfg: &SamplerConfig) -> Generator<'m> {
        let sampler = CpuSampler::new(cfg.clone(), model.hparams().vocab);
        Generator { model, state, sampler, logits: None }
    }

    /// Feeds `tokens` (the state continues from wherever it is), calling `progress(done, total)`
    /// after each part.
    pub fn prefill(&mut self, tokens: &[u32], progress: &mut dyn FnMut(usize, usize)) -> Result<()> {
        let mut done = 0;
        for part in tokens.chunks(PREFILL_CALL_TOKENS) {
            let last = done + part.len() == tokens.len();
            let want = if last { Logits::Last } else { Logits::At(vec![]) };
            let mut out = self.model.forward(self.state, part, &want)?;
            if last {
                self.logits = out.pop();
            }
            done += part.len();
            progress(done, tokens.len());
        }
        Ok(())
    }

    /// Samples the next token and feeds it.
    pub fn next_token(&mut self) -> Result<u32> {
        let logits = self
            .logits
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the generator needs a prefill before the first token"))?;
        let token = self.sampler.sample(logits);
        self.logits = self.model.forward(self.state, &[token], &Logits::Last)?.pop();
        Ok(token)
    }
}
