//! Filling buffers in place: the caller writes a buffer's contents straight into wgpu's upload
//! staging memory (no intermediate vector, no second copy), from any thread; and the counters
//! that say where a load spent its time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::buffer::GpuBuffer;
use crate::{Gpu, GpuError, Result};

/// Write-only access to mapped upload memory (it may be write-combined: never read it).
pub use wgpu::WriteOnly;

/// What buffer and pipeline creation have cost on one [`Gpu`] so far. The times are summed over
/// threads (several threads filling at once count several seconds per second).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResourceStats {
    /// Storage buffers created with contents ([`Gpu::buffer_with`], [`Gpu::buffer_init`]).
    pub filled_buffers: u64,
    /// Their bytes.
    pub filled_bytes: u64,
    /// Seconds in creating them and their staging memory (driver allocations).
    pub create_s: f64,
    /// Seconds in the callers' fill functions (packing into staging memory).
    pub fill_s: f64,
    /// Seconds in handing the staging memory back to the queue.
    pub finish_s: f64,
    /// Pipelines compiled (cache misses).
    pub pipelines: u64,
    /// Seconds in compiling them.
    pub pipeline_s: f64,
}

impl ResourceStats {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &ResourceStats) -> ResourceStats {
        ResourceStats {
            filled_buffers: self.filled_buffers - earlier.filled_buffers,
            filled_bytes: self.filled_bytes - earlier.filled_bytes,
            create_s: self.create_s - earlier.create_s,
            fill_s: self.fill_s - earlier.fill_s,
            finish_s: self.finish_s - earlier.finish_s,
            pipelines: self.pipelines - earlier.pipelines,
            pipeline_s: self.pipeline_s - earlier.pipeline_s,
        }
    }
}

/// The atomic counters behind [`ResourceStats`] (nanoseconds).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    filled_buffers: AtomicU64,
    filled_bytes: AtomicU64,
    create_ns: AtomicU64,
    fill_ns: AtomicU64,
    finish_ns: AtomicU64,
    pipelines: AtomicU64,
    pipeline_ns: AtomicU64,
}

fn nanos_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

impl Counters {
    pub(crate) fn pipeline_compiled(&self, start: Instant) {
        self.pipelines.fetch_add(1, Ordering::Relaxed);
        self.pipeline_ns.fetch_add(nanos_since(start), Ordering::Relaxed);
    }

    /// Counts creation time up to now; returns now.
    fn created(&self, start: Instant) -> Instant {
        let now = Instant::now();
        self.create_ns.fetch_add(now.duration_since(start).as_nanos() as u64, Ordering::Relaxed);
        now
    }

    /// Counts fill time up to now; returns now.
    fn filled(&self, start: Instant) -> Instant {
        let now = Instant::now();
        self.fill_ns.fetch_add(now.duration_since(start).as_nanos() as u64, Ordering::Relaxed);
        now
    }

    fn finished(&self, start: Instant, bytes: u64) {
        self.finish_ns.fetch_add(nanos_since(start), Ordering::Relaxed);
        self.filled_buffers.fetch_add(1, Ordering::Relaxed);
        self.filled_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> ResourceStats {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 * 1e-9;
        ResourceStats {
            filled_buffers: self.filled_buffers.load(Ordering::Relaxed),
            filled_bytes: self.filled_bytes.load(Ordering::Relaxed),
            create_s: s(&self.create_ns),
            fill_s: s(&self.fill_ns),
            finish_s: s(&self.finish_ns),
            pipelines: self.pipelines.load(Ordering::Relaxed),
            pipeline_s: s(&self.pipeline_ns),
        }
    }
}

impl Gpu {
    /// A storage buffer of `size` bytes (rounded up to a multiple of 4, at least 4) whose
    /// contents `fill` writes into the upload staging memory it is given: exactly `size` bytes,
    /// every one of which it must write (the rounding tail is zeroed here). The data reaches the
    /// buffer at the next submission ([`Gpu::flush_uploads`] sends it without other work).
    ///
    /// Callable from several threads at once. An error from `fill` is returned as is (the
    /// buffer is dropped).
    pub fn buffer_with<E: From<GpuError>>(
        &self,
        label: &str,
        size: u64,
        fill: impl FnOnce(WriteOnly<'_, [u8]>) -> Result<(), E>,
    ) -> Result<GpuBuffer, E> {
        let start = Instant::now();
        let buffer = self.buffer_uninit(label, size)?;
        let mut view = self.staging(&buffer, 0..buffer.size())?;
        let filling = self.counters.created(start);
        let (data, mut tail) = view.slice(..).split_at(size as usize);
        tail.fill(0);
        let filled = fill(data);
        let finishing = self.counters.filled(filling);
        filled?;
        drop(view); // records the copy from the staging memory into the buffer
        self.counters.finished(finishing, buffer.size());
        Ok(buffer)
    }

    /// [`Gpu::buffer_with`] written as `parts` consecutive pieces filled at the same time, one
    /// scoped thread each: `fill(offset, piece)` writes bytes `offset..offset + piece.len()`
    /// (offsets are multiples of 4; the pieces cover `size` bytes). The first error in piece
    /// order is returned.
    pub fn buffer_with_parts<E: From<GpuError> + Send>(
        &self,
        label: &str,
        size: u64,
        parts: usize,
        fill: impl Fn(u64, WriteOnly<'_, [u8]>) -> Result<(), E> + Sync,
    ) -> Result<GpuBuffer, E> {
        let start = Instant::now();
        let buffer = self.buffer_uninit(label, size)?;
        let piece = size.div_ceil(parts.max(1) as u64).next_multiple_of(4).max(4);
        let mut views = Vec::new();
        let mut offset = 0;
        while offset < buffer.size() {
            let end = (offset + piece).min(buffer.size());
            views.push((offset, self.staging(&buffer, offset..end)?));
            offset = end;
        }
        let filling = self.counters.created(start);
        let results: Vec<Result<(), E>> = std::thread::scope(|s| {
            let fill = &fill;
            let handles: Vec<_> = views
                .iter_mut()
                .map(|(offset, view)| {
                    let offset = *offset;
                    s.spawn(move || {
                        let data_len = size.saturating_sub(offset).min(view.len() as u64) as usize;
                        let (data, mut tail) = view.slice(..).split_at(data_len);
                        tail.fill(0);
                        fill(offset, data)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let finishing = self.counters.filled(filling);
        results.into_iter().collect::<Result<(), E>>()?;
        drop(views);
        self.counters.finished(finishing, buffer.size());
        Ok(buffer)
    }

    /// Staging memory for `range` of `buffer`, copied into it when the view is dropped.
    fn staging(&self, buffer: &GpuBuffer, range: std::ops::Range<u64>) -> Result<wgpu::QueueWriteBufferView> {
        let size = wgpu::BufferSize::new(range.end - range.start).expect("a non-empty range");
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let view = self.queue.write_buffer_with(buffer.raw(), range.start, size);
        match (view, pollster::block_on(scope.pop())) {
            (Some(view), None) => Ok(view),
            (_, error) => Err(GpuError::Allocation {
                label: buffer.label().to_string(),
                size: size.get(),
                message: error.map_or_else(|| "no staging memory for the upload".to_string(), |e| e.to_string()),
            }),
        }
    }

    /// Sends the uploads recorded so far ([`Gpu::buffer_with`], [`Gpu::write`]) to the queue
    /// without other work, so their staging memory is released once they are done; with
    /// `wait`, blocks until they are.
    pub fn flush_uploads(&self, wait: bool) -> Result<()> {
        let index = self.queue.submit([]);
        if wait {
            self.device
                .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
                .map_err(|e| GpuError::Submit(e.to_string()))?;
        }
        Ok(())
    }

    /// What buffer and pipeline creation have cost on this device so far.
    pub fn resource_stats(&self) -> ResourceStats {
        self.counters.get()
    }
}
