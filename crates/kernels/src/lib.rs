//! Every WGSL compute kernel of the engine. Each kernel is one unit (`src/<kernel>/`): its
//! `.wgsl`, its Rust launcher (bindings, workgroup size, dispatch size, shape checks), its CPU
//! reference and its GPU-vs-reference tests. Shared WGSL helpers live in `common.wgsl`,
//! prepended by `build.rs`, which also validates every shader with naga.
//!
//! The kernels know nothing of RWKV files or models: they take buffers and shapes.

pub mod formats;
pub mod layer_norm;
pub mod lora;
pub mod matmul;
pub mod matvec;
pub mod projection;
pub mod time_mix;

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
    #[error("kernel '{kernel}': buffer '{binding}' holds {found} bytes but {needed} are needed")]
    BufferTooSmall { kernel: &'static str, binding: &'static str, found: u64, needed: u64 },
}

pub type Result<T, E = KernelError> = std::result::Result<T, E>;

pub(crate) fn check_shape(kernel: &'static str, what: &'static str, found: u32, ok: bool) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(KernelError::Shape { kernel, what, found: found as u64, why: "see the kernel's documentation" })
    }
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
        matmul::KERNEL,
        time_mix::KERNEL,
        time_mix::KERNEL_LORA,
    ]
}
