//! [`LoadTimings`]: where [`crate::gpu::Model::load`] spent its time.

use gpu_core::ResourceStats;

/// The phases of one [`crate::gpu::Model::load`], in seconds of wall clock, and what buffer and
/// pipeline creation cost during it (thread-seconds summed over the loading threads).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadTimings {
    /// Threads that packed and uploaded the weights.
    pub threads: usize,
    /// Packing and uploading every weight, with each layer's pipelines (the parallel phase).
    pub weights_s: f64,
    /// The model-wide pipelines (compiled on their own thread during the weights phase).
    pub kernels_s: f64,
    /// The activation buffers.
    pub scratch_s: f64,
    /// Sending the last uploads and waiting until every weight is on the device.
    pub upload_wait_s: f64,
    /// The whole load.
    pub total_s: f64,
    /// Buffers and pipelines created during the load.
    pub resources: ResourceStats,
}
