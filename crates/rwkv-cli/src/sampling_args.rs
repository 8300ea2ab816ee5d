//! The sampling flags shared by `generate` and `chat`, mapped onto rwkv-model's
//! [`SamplerConfig`] (which holds the one set of defaults; each command picks its own).

use anyhow::{anyhow, Result};
use clap::Args;
use kernels::KernelError;
use rwkv_model::gpu::SamplerConfig;
use rwkv_model::ModelError;

#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Softmax temperature; 0 = greedy.
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    /// Nucleus sampling: keep the most likely tokens up to this cumulative probability (0..1).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Subtracted from the logit of every token already generated.
    #[arg(long, allow_negative_numbers = true)]
    pub presence_penalty: Option<f32>,
    /// Subtracted once more per (decayed) occurrence of a generated token.
    #[arg(long, allow_negative_numbers = true)]
    pub frequency_penalty: Option<f32>,
    /// Multiplies the occurrence counts after every token (0.996: half-life about 173 tokens).
    #[arg(long)]
    pub penalty_decay: Option<f32>,
    /// Random seed (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl SamplingArgs {
    /// The flags given, the rest from `defaults`; the seed from the clock unless given.
    pub fn config(&self, defaults: &SamplerConfig) -> SamplerConfig {
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
        });
        SamplerConfig {
            temperature: self.temperature.unwrap_or(defaults.temperature),
            top_p: self.top_p.unwrap_or(defaults.top_p),
            top_k: self.top_k.unwrap_or(defaults.top_k),
            presence_penalty: self.presence_penalty.unwrap_or(defaults.presence_penalty),
            frequency_penalty: self.frequency_penalty.unwrap_or(defaults.frequency_penalty),
            penalty_decay: self.penalty_decay.unwrap_or(defaults.penalty_decay),
            seed,
            banned: defaults.banned.clone(),
        }
    }
}

/// Checks `cfg` for a vocabulary of `vocab` tokens; a bad setting is named by its flag.
pub fn validate(cfg: &SamplerConfig, vocab: usize) -> Result<()> {
    cfg.validate(vocab).map_err(|e| match e {
        ModelError::Kernel(KernelError::SampleSetting { setting, value, expected }) => {
            anyhow!("--{} is {value}, expected {expected}", setting.replace('_', "-"))
        }
        e => anyhow!(e).context("sampling settings"),
    })
}
