//! Weights packed straight into a new buffer's upload memory.

use gpu_core::{Gpu, GpuBuffer, UploadSession, WriteOnly};
use kernels::packing::Packing;

use crate::ModelError;

/// A layout larger than this is packed by several threads at once, one part each.
const PART_BYTES: u64 = 32 << 20;

/// Staging buffers of a load's upload session: this size, two per thread.
const CHUNK_BYTES: u64 = 16 << 20;

/// A storage buffer holding `packing`, packed in place; large layouts (the embedding table, the
/// head) are packed by several threads.
pub(crate) fn upload_packed(gpu: &Gpu, label: &str, packing: &Packing<'_>) -> Result<GpuBuffer, ModelError> {
    let bytes = packing.bytes();
    let fill = |offset, dst: WriteOnly<'_, [u8]>| Ok(packing.write_to(offset, dst)?);
    match bytes.div_ceil(PART_BYTES).min(available_threads() as u64) {
        0 | 1 => gpu.buffer_with(label, bytes, fill),
        parts => gpu.buffer_with_parts(label, bytes, parts as usize, fill),
    }
}

/// The upload session of a load on `threads` threads (whose big buffers are packed by up to
/// one thread per core on top).
pub(crate) fn load_session(gpu: &Gpu, threads: usize) -> Result<UploadSession<'_>, ModelError> {
    Ok(gpu.upload_session(CHUNK_BYTES, 2 * threads.max(available_threads()) + 2)?)
}

/// The threads this process may run at once.
pub(crate) fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
