//! The global flags that choose and open the GPU, the same for every command.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rwkv_model::gpu::PrefillCoop;

/// The `--coop` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CoopMode {
    Off,
    Half,
    Split,
}
use gpu_core::{AdapterSelector, ContextOptions, Gpu, LimitsPolicy};

#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Adapter to use: an index from `rwkv-cli adapters`, or a substring of its name.
    #[arg(long, global = true)]
    pub adapter: Option<String>,
    /// Backend to use: vulkan, metal, dx12 or gl.
    #[arg(long, global = true)]
    pub backend: Option<String>,
    /// Limits to request: `max` (what the adapter offers) or `default` (WebGPU's defaults).
    #[arg(long, global = true, default_value = "max")]
    pub limits: LimitsPolicy,
    /// Compile the kernels with wgpu's runtime checks (index clamping, loop bounds): slower,
    /// for diagnosing a suspected kernel fault.
    #[arg(long, global = true)]
    pub shader_checks: bool,
    /// Prefill on tensor cores (cooperative matrices) where the adapter has them: `half` (inputs
    /// rounded to f16, as llama.cpp's F16 matmuls do; within the golden tolerance for f16
    /// activations), `split` (inputs as two f16: closer to f32, slower) or `off` (f32 math only).
    #[arg(long, global = true, default_value = "half")]
    pub coop: CoopMode,
}

impl DeviceArgs {
    pub fn selector(&self) -> Result<AdapterSelector> {
        match (&self.adapter, &self.backend) {
            (Some(_), Some(_)) => anyhow::bail!("give --adapter or --backend, not both"),
            (Some(a), None) => a.parse().map_err(anyhow::Error::msg),
            (None, Some(b)) => match b.parse().map_err(anyhow::Error::msg)? {
                s @ AdapterSelector::Backend(_) => Ok(s),
                _ => anyhow::bail!("unknown backend '{b}' (expected vulkan, metal, dx12 or gl)"),
            },
            (None, None) => Ok(AdapterSelector::HighPerformance),
        }
    }

    pub fn options(&self) -> Result<ContextOptions> {
        let disabled_features = if self.coop == CoopMode::Off {
            gpu_core::wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
        } else {
            gpu_core::wgpu::Features::empty()
        };
        Ok(ContextOptions {
            adapter: self.selector()?,
            limits: self.limits,
            disabled_features,
            shader_runtime_checks: self.shader_checks,
        })
    }

    /// The model's prefill choice for `--coop`.
    pub fn prefill_coop(&self) -> PrefillCoop {
        match self.coop {
            CoopMode::Off => PrefillCoop::Off,
            CoopMode::Half => PrefillCoop::Half,
            CoopMode::Split => PrefillCoop::Split,
        }
    }

    pub fn open(&self) -> Result<Gpu> {
        Gpu::new(&self.options()?).context("opening the GPU")
    }
}
