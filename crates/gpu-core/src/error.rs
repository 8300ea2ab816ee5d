use thiserror::Error;

/// Everything that can go wrong in the GPU layer. Each variant names what failed (the
/// kernel, the buffer, the limit) so that a user can act on the message.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),

    #[error("could not create a device on adapter '{adapter}': {message}")]
    RequestDevice { adapter: String, message: String },

    #[error(
        "kernel '{kernel}' needs {needed} for {limit} but the device grants {granted} \
         (limits policy: {policy})"
    )]
    LimitExceeded { kernel: String, limit: &'static str, needed: u64, granted: u64, policy: &'static str },

    #[error("kernel '{kernel}' needs the adapter feature {feature}, which this device lacks")]
    MissingFeature { kernel: String, feature: &'static str },

    #[error("creating the pipeline for kernel '{kernel}' failed: {message}")]
    Pipeline { kernel: String, message: String },

    #[error("creating a bind group for kernel '{kernel}' group {group} failed: {message}")]
    BindGroup { kernel: String, group: u32, message: String },

    #[error("kernel '{kernel}' group {group} expects {expected} buffers but {found} were given")]
    BindingCount { kernel: String, group: u32, expected: usize, found: usize },

    #[error("buffer '{label}' of {size} bytes is larger than {limit} ({max} bytes) on this device")]
    TooLarge { label: String, size: u64, limit: &'static str, max: u64 },

    #[error("creating buffer '{label}' of {size} bytes failed: {message}")]
    Allocation { label: String, size: u64, message: String },

    #[error("reading back buffer '{label}' failed: {message}")]
    Readback { label: String, message: String },

    #[error("the GPU reported an error during submission: {0}")]
    Submit(String),
}
