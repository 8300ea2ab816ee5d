//! The GPU layer every other crate stands on: adapter choice, limits and capability
//! negotiation, cached pipelines with several bind groups, bind groups owned by their callers,
//! buffers with live counts, upload and readback, a recorder that batches many dispatches into
//! one submission, dispatch lists recorded once and replayed, and GPU timestamps.
//!
//! Nothing here knows about RWKV or about any particular kernel: a kernel is described by a
//! [`KernelSource`] (WGSL text plus its declared bindings) and everything else follows.

#![deny(missing_docs)]

mod adapter;
mod bind_group;
mod buffer;
mod caps;
mod context;
mod dispatch_list;
mod error;
mod kernel;
mod pipeline;
mod recorder;
mod staging_pool;
mod timer;
mod upload;

pub use adapter::{list_adapters, new_instance, AdapterSelector, AdapterSummary};
pub use bind_group::BindGroup;
pub use buffer::{BufferRange, GpuBuffer, LiveBuffers, RowSplit};
pub use caps::{Capabilities, LimitsPolicy, SubgroupSize};
pub use context::{ContextOptions, Gpu};
pub use dispatch_list::DispatchList;
pub use error::GpuError;
pub use kernel::{Access, Binding, KernelSource, Needs};
pub use pipeline::Pipeline;
pub use recorder::{workgroups_1d, Recorder, RecorderStats};
pub use timer::{KernelTime, Timer};
pub use upload::{ResourceStats, UploadSession, WriteOnly};

/// wgpu itself, re-exported so that dependants use the exact pinned version.
pub use wgpu;

/// This crate's result type: errors are [`GpuError`]s.
pub type Result<T, E = GpuError> = std::result::Result<T, E>;
