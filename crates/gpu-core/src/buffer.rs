use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many buffers made through one [`crate::Gpu`] are alive, and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveBuffers {
    /// Number of buffers alive.
    pub buffers: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// The atomic counters behind [`LiveBuffers`], shared by a device and its buffers.
#[derive(Debug, Default)]
pub(crate) struct LiveCounter {
    buffers: AtomicU64,
    bytes: AtomicU64,
}

impl LiveCounter {
    pub(crate) fn get(&self) -> LiveBuffers {
        LiveBuffers { buffers: self.buffers.load(Ordering::Relaxed), bytes: self.bytes.load(Ordering::Relaxed) }
    }
}

/// The one owner of a wgpu buffer: counted live from creation until the last handle to it
/// (a [`GpuBuffer`] clone or a [`crate::BindGroup`] binding it) is dropped.
#[derive(Debug)]
struct Owned {
    buffer: wgpu::Buffer,
    label: String,
    live: Arc<LiveCounter>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.live.buffers.fetch_sub(1, Ordering::Relaxed);
        self.live.bytes.fetch_sub(self.buffer.size(), Ordering::Relaxed);
    }
}

/// A labelled buffer made through a [`crate::Gpu`]; clones share it.
#[derive(Clone, Debug)]
pub struct GpuBuffer(Arc<Owned>);

impl GpuBuffer {
    pub(crate) fn wrap(buffer: wgpu::Buffer, label: &str, live: &Arc<LiveCounter>) -> Self {
        live.buffers.fetch_add(1, Ordering::Relaxed);
        live.bytes.fetch_add(buffer.size(), Ordering::Relaxed);
        GpuBuffer(Arc::new(Owned { buffer, label: label.to_string(), live: live.clone() }))
    }
    /// The wgpu buffer.
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.0.buffer
    }
    /// The label given at creation (in errors and GPU debuggers).
    pub fn label(&self) -> &str {
        &self.0.label
    }
    /// The size in bytes (as allocated: rounded up to a multiple of 4, or 16 for a uniform).
    pub fn size(&self) -> u64 {
        self.0.buffer.size()
    }
    /// The whole buffer as a binding.
    pub fn all(&self) -> BufferRange<'_> {
        BufferRange { buffer: self, offset: 0, size: self.size() }
    }
    /// `size` bytes from `offset` as a binding.
    pub fn range(&self, offset: u64, size: u64) -> BufferRange<'_> {
        BufferRange { buffer: self, offset, size }
    }
}

/// A byte range of a buffer bound to one binding slot.
#[derive(Clone, Copy, Debug)]
pub struct BufferRange<'a> {
    /// The buffer.
    pub buffer: &'a GpuBuffer,
    /// The first byte.
    pub offset: u64,
    /// The length in bytes.
    pub size: u64,
}

impl BufferRange<'_> {
    pub(crate) fn as_binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer.raw(),
            offset: self.offset,
            size: wgpu::BufferSize::new(self.size),
        })
    }
}

/// How a row-major matrix too large for one binding is split into row blocks that each fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowSplit {
    /// Rows per part (the last part may have fewer).
    pub rows_per_part: u64,
    /// `(first_row, row_count)` of each part.
    pub parts: Vec<(u64, u64)>,
}

impl RowSplit {
    /// Splits `rows` rows of `row_bytes` bytes into parts of at most `max_binding` bytes whose
    /// byte offsets are multiples of `offset_alignment` (so each part can be bound on its own).
    /// Returns `None` when a single row does not fit.
    pub fn new(rows: u64, row_bytes: u64, max_binding: u64, offset_alignment: u64) -> Option<Self> {
        if row_bytes == 0 || row_bytes > max_binding {
            return None;
        }
        let mut per = max_binding / row_bytes;
        // Rows per part must keep each part's byte offset aligned.
        let align_rows = offset_alignment / gcd(offset_alignment, row_bytes);
        per -= per % align_rows;
        if per == 0 {
            return None;
        }
        let per = per.min(rows.max(1));
        let parts = (0..rows).step_by(per as usize).map(|first| (first, per.min(rows - first))).collect();
        Some(RowSplit { rows_per_part: per, parts })
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_split_fits_and_aligns() {
        // An F16 head of a 2.9B model: 65536 rows of 2560 halves, 128 MiB bindings.
        let s = RowSplit::new(65536, 5120, 128 << 20, 256).unwrap();
        assert_eq!(s.parts.iter().map(|p| p.1).sum::<u64>(), 65536);
        for &(first, n) in &s.parts {
            assert!(n * 5120 <= 128 << 20);
            assert_eq!((first * 5120) % 256, 0);
        }
        assert_eq!(s.parts.len(), 3);
        assert!(RowSplit::new(10, 1000, 999, 256).is_none());
        let s = RowSplit::new(7, 4, 1 << 20, 256).unwrap();
        assert_eq!(s.parts, vec![(0, 7)]);
    }
}
