//! The RWKV-7 forward pass on the GPU, assembled from `kernels`.
//!
//! One implementation with two paths behind the same API: the *fused* path (LayerNorm and the
//! token-shift lerps in one kernel; for one token, the LoRA second stage inside the time-mix
//! kernel) and the *plain* path (one operation per dispatch). Both run under either limits
//! policy; weights too large for one binding are split into row blocks.

mod chunk;
pub(crate) mod forward;
mod generator;
mod jobs;
mod linear;
mod model;
mod scratch;
pub(crate) mod state;
pub(crate) mod state_pool;
mod stats;
mod timings;
mod token_step;
mod upload;
mod weights;

pub use chunk::{chunk_capacity, chunk_len};
pub use generator::{Generator, SamplerConfig};
pub use linear::{PrefillCoop, COOP_MIN_TOKENS};
pub use model::{Logits, Model, ModelOptions, Path};
pub use state::{State, StateSnapshot};
pub use stats::{DecodeTimes, ForwardCounters};
pub use timings::LoadTimings;
pub use weights::LoadProgress;

/// The shape of the recurrent state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// L: number of layers.
    pub n_layer: usize,
    /// C: embedding width (H·N).
    pub c: usize,
    /// N: head size.
    pub head_size: usize,
}
