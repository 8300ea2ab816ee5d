//! Token generation over a model and a state: prefill (with progress for long prompts), then one token
//! at a time, sampled on the GPU and fed straight back (rwkv-model's [`rwkv_model::gpu::Generator`]);
//! the CPU only reads the ids.

use anyhow::{bail, Result};
use gpu_core::RecorderStats;
use rwkv_model::gpu::{self, Logits, Model, SamplerConfig, State};

/// Decode steps a streaming generator may queue ahead of the token being read.
const STREAMING_LOOKAHEAD: usize = 2;

pub struct Generator<'m> {
    model: &'m Model,
    state: &'m State,
    inner: gpu::Generator<'m>,
    /// The last token returned, not yet fed to the state (exact generators only).
    unfed: Option<u32>,
    exact: bool,
}

impl<'m> Generator<'m> {
    /// A generator continuing `state` that keeps the GPU busy while the CPU prints: the state
    /// runs a few tokens ahead of those returned (for `generate` and `bench`).
    pub fn streaming(model: &'m Model, state: &'m State, cfg: &SamplerConfig) -> Result<Generator<'m>> {
        Self::new(model, state, cfg, false)
    }

    /// A generator continuing `state` whose [`Self::finish`] leaves the state exactly after the
    /// last token returned (for `chat`, whose state carries across turns).
    pub fn exact(model: &'m Model, state: &'m State, cfg: &SamplerConfig) -> Result<Generator<'m>> {
        Self::new(model, state, cfg, true)
    }

    fn new(model: &'m Model, state: &'m State, cfg: &SamplerConfig, exact: bool) -> Result<Generator<'m>> {
        let lookahead = if exact { 0 } else { STREAMING_LOOKAHEAD };
        let inner = model.generator(state, cfg, lookahead)?;
        Ok(Generator { model, state, inner, unfed: None, exact })
    }

    /// Feeds `tokens` (the state continues from wherever it is), calling `progress(done, total)` as
    /// parts complete. Call once, before the first [`Self::next_token`].
    pub fn prefill(&mut self, tokens: &[u32], progress: &mut dyn FnMut(usize, usize)) -> Result<()> {
        let Some((&last, head)) = tokens.split_last() else {
            bail!("nothing to prefill");
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
        self.inner.prefill(&[last])?;
        progress(tokens.len(), tokens.len());
        Ok(())
    }

    /// The next token. A streaming generator's state runs up to its lookahead + 1 tokens ahead
    /// of the tokens returned; an exact one's lacks only the last token returned.
    pub fn next_token(&mut self) -> Result<u32> {
        let token = self.inner.next_token()?;
        self.unfed = Some(token);
        Ok(token)
    }

    /// Feeds the last token returned, so that the state ends exactly after it (exact
    /// generators only).
    pub fn finish(self) -> Result<()> {
        if !self.exact {
            bail!("a streaming generator's state has run past the tokens it returned");
        }
        // With no lookahead, the only step ever queued is the prefill's, which sampled without
        // feeding: the state is then exactly after the prompt.
        if let Some(token) = self.unfed {
            self.model.forward(self.state, &[token], &Logits::At(vec![]))?;
        }
        Ok(())
    }

    /// What one decode step records (one submission each).
    pub fn step_stats(&self) -> RecorderStats {
        self.inner.step_stats()
    }

    /// The CPU time of the decode steps so far: recording and submitting, and waiting for tokens.
    pub fn decode_times(&self) -> gpu::DecodeTimes {
        self.inner.decode_times()
    }
}
