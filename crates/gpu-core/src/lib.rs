//! The GPU layer every other crate stands on: adapter choice, limits and capability
//! negotiation, cached pipelines with several bind groups, cached bind groups, buffers,
//! upload and readback, a recorder that batches many dispatches into one submission, and
//! GPU timestamps.
//!
//! Nothing here knows about RWKV or about any particular kernel: a kernel is described by a
//! [`KernelSource`] (WGSL text plus its declared bindings) and everything else follows.

mod adapter;
mod buffer;
mod caps;
mod context;
mod error;
mod kernel;
mod pipeline;
mod recorder;
mod staging_pool;
mod timer;
mod upload;

pub use adapter::{list_adapters, new_instance, AdapterSelector, AdapterSummary};
pub use buffer::{BufferRange, GpuBuffer, RowSplit};
pub use caps::{Capabilities, LimitsPolicy, SubgroupSize};
pub use context::{ContextOptions, Gpu};
pub use error::GpuError;
pub use kernel::{Access, Binding, KernelSource, Needs};
pub use pipeline::Pipeline;
pub use recorder::{workgroups_1d, Recorder, RecorderStats};
pub use timer::{KernelTime, Timer};
pub use upload::{ResourceStats, UploadSession, WriteOnly};

/// wgpu itself, re-exported so that dependants use the exact pinned version.
pub use wgpu;

pub type Result<T, E = GpuError> = std::result::Result<T, E>;
