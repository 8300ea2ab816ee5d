//! Every WGSL compute kernel of the engine. Each kernel is one unit (`src/<kernel>/`): its
//! `.wgsl`, its Rust launcher (bindings, workgroup size, dispatch size, shape checks), its CPU
//! reference and its GPU-vs-reference tests. Shared WGSL helpers live in `common.wgsl` (and, for
//! the matrix kernels, `projection.wgsl`); `build.rs` composes each shader module from its files
//! (`shader_check::modules`) and validates it with naga.
//!
//! The kernels know nothing of RWKV files or models: they take buffers and shapes.

pub mod embedding;
pub mod formats;
pub mod layer_norm;
pub mod ln_shift;
pub mod matmul;
pub mod matmul_coop;
pub mod matvec;
pub mod packing;
pub mod projection;
pub mod row_mode;
pub mod sample;
pub mod time_mix;
pub mod token_shift;

mod token_count;

pub use row_mode::RowMode;

#[cfg(test)]
pub(crate) mod argmax;
#[cfg(test)]
pub(crate) mod projection_testing;
#[cfg(feature = "validate")]
pub mod shader_check;
#[cfg(test)]
pub(crate) mod testing;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    #[error(transparent)]
    Gpu(#[from] gpu_core::GpuError),
    #[error("kernel '{kernel}': {what} is {found}, which it cannot handle ({why})")]
    Shape { kernel: &'static str, what: &'static str, found: u64, why: &'static str },
    #[error("kernel '{kernel}': a {found} matrix cannot be packed as {wanted} ({why})")]
    Format { kernel: &'static str, found: &'static str, wanted: &'static str, why: &'static str },
    #[error("kernel '{kernel}': buffer '{binding}' holds {found} bytes but {needed} are needed")]
    BufferTooSmall { kernel: &'static str, binding: &'static str, found: u64, needed: u64 },
    #[error("sampling setting {setting} is {value}, expected {expected}")]
    SampleSetting { setting: &'static str, value: f32, expected: &'static str },
    #[error("{count} banned tokens, but sampling bans at most {max}")]
    TooManyBanned { count: usize, max: usize },
    #[error("banned token {token} is outside the vocabulary of {vocab} tokens")]
    BannedOutOfVocabulary { token: u32, vocab: u32 },
    #[error("every token of the vocabulary of {vocab} is banned: nothing could be sampled")]
    EveryTokenBanned { vocab: u32 },
    /// Stored weight bytes that are not whole blocks of their format.
    #[error(transparent)]
    Quant(#[from] ggml_quants::QuantError),
}

pub type Result<T, E = KernelError> = std::result::Result<T, E>;

pub(crate) fn check_shape(kernel: &'static str, what: &'static str, found: u32, ok: bool) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(KernelError::Shape { kernel, what, found: found as u64, why: "see the kernel's documentation" })
    }
}

/// The first `bytes` bytes of `range`. Kernels that take their row count from `arrayLength`
/// are bound to exactly the rows they process.
pub(crate) fn prefix(range: gpu_core::BufferRange<'_>, bytes: u64) -> gpu_core::BufferRange<'_> {
    gpu_core::BufferRange { size: bytes, ..range }
}

/// The largest power of two no larger than `want` that the device allows as a 1-D workgroup.
pub(crate) fn workgroup_size(gpu: &gpu_core::Gpu, want: u32) -> u32 {
    let l = &gpu.caps().limits;
    let max = want.min(l.max_compute_invocations_per_workgroup).min(l.max_compute_workgroup_size_x).max(1);
    1 << (31 - max.leading_zeros())
}

pub(crate) fn check_len(kernel: &'static str, binding: &'static str, found: u64, needed: u64) -> Result<()> {
    if found < needed {
        Err(KernelError::BufferTooSmall { kernel, binding, found, needed })
    } else {
        Ok(())
    }
}

/// Every kernel the crate ships, for `cargo xtask validate-shaders` and the binding check.
pub fn registry() -> Vec<gpu_core::KernelSource> {
    vec![
        layer_norm::KERNEL,
        matvec::KERNEL,
        matvec::KERNEL_SUBGROUP,
        matvec::KERNEL_PROLOGUE,
        matvec::KERNEL_PROLOGUE_SUBGROUP,
        matmul::KERNEL,
        matmul::KERNEL_LANES,
        matmul_coop::KERNEL,
        time_mix::KERNEL,
        time_mix::KERNEL_LORA,
        embedding::KERNEL,
        sample::KERNEL,
        token_shift::KERNEL,
        ln_shift::KERNEL,
    ]
}
