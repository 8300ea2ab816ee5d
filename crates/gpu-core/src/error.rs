use thiserror::Error;

/// Everything that can go wrong in the GPU layer. Each variant names what failed (the
/// kernel, the buffer, the limit) so that a user can act on the message.
#[derive(Debug, Error)]
pub enum GpuError {
    /// No adapter matched the selector; the text lists the adapters that exist, or says that no
    /// driver is installed.
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),

    /// The adapter refused to create a device with the requested features and limits.
    #[error("could not create a device on adapter '{adapter}': {message}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },

    /// A kernel needs more of a limit than the device was granted.
    #[error(
        "kernel '{kernel}' needs {needed} for {limit} but the device grants {granted} \
         (limits policy: {policy})"
    )]
    LimitExceeded {
        /// The kernel's name.
        kernel: String,
        /// The wgpu limit's name (a `wgpu::Limits` field, such as `max_storage_buffers_per_shader_stage`).
        limit: &'static str,
        /// What the kernel needs, in the limit's unit.
        needed: u64,
        /// What the device grants, in the limit's unit.
        granted: u64,
        /// The limits policy the device was created with ([`crate::LimitsPolicy::name`]).
        policy: &'static str,
    },

    /// A kernel needs an adapter feature the device does not have.
    #[error("kernel '{kernel}' needs the adapter feature {feature}, which this device lacks")]
    MissingFeature {
        /// The kernel's name.
        kernel: String,
        /// The wgpu feature's name (`SHADER_F16`, `SUBGROUP`, `EXPERIMENTAL_COOPERATIVE_MATRIX`).
        feature: &'static str,
    },

    /// The shader module or the compute pipeline failed validation.
    #[error("creating the pipeline for kernel '{kernel}' failed: {message}")]
    Pipeline {
        /// The kernel's (or pipeline's) label.
        kernel: String,
        /// The validation errors, joined.
        message: String,
    },

    /// The device refused a bind group (a validation error inside its error scope).
    #[error("creating a bind group for kernel '{kernel}' group {group} failed: {message}")]
    BindGroup {
        /// The pipeline's label.
        kernel: String,
        /// The bind group index.
        group: u32,
        /// wgpu's error chain.
        message: String,
    },

    /// A bind group was given a different number of buffers than the kernel declares for it.
    #[error("kernel '{kernel}' group {group} expects {expected} buffers but {found} were given")]
    BindingCount {
        /// The pipeline's label.
        kernel: String,
        /// The bind group index.
        group: u32,
        /// The bindings the kernel declares in that group (0 for a group it does not have).
        expected: usize,
        /// The buffer ranges given.
        found: usize,
    },

    /// A buffer or a binding exceeds a device size limit.
    #[error("buffer '{label}' of {size} bytes is larger than {limit} ({max} bytes) on this device")]
    TooLarge {
        /// The buffer's label (and the binding's, for a binding).
        label: String,
        /// The requested size in bytes.
        size: u64,
        /// The wgpu limit's name (`max_buffer_size`, `max_storage_buffer_binding_size`, ...).
        limit: &'static str,
        /// The limit's value in bytes.
        max: u64,
    },

    /// The device could not create a buffer (out of memory, or a validation error).
    #[error("creating buffer '{label}' of {size} bytes failed: {message}")]
    Allocation {
        /// The buffer's label.
        label: String,
        /// The requested size in bytes.
        size: u64,
        /// wgpu's message.
        message: String,
    },

    /// Mapping a buffer for reading, or waiting for it, failed.
    #[error("reading back buffer '{label}' failed: {message}")]
    Readback {
        /// The buffer's label.
        label: String,
        /// wgpu's message.
        message: String,
    },

    /// Waiting for submitted work failed, or an upload reported an error.
    #[error("the GPU reported an error during submission: {0}")]
    Submit(String),
}
