//! Filling buffers in place: the caller writes a buffer's contents straight into upload staging
//! memory (no intermediate vector, no second copy), a piece at a time, from any thread; and the
//! counters that say where a load spent its time.
//!
//! Outside an [`UploadSession`] each piece gets fresh staging memory from wgpu
//! (`Queue::write_buffer_with`), copied into the buffer at the next submission. Inside one, the
//! pieces go through a fixed pool of mapped staging buffers that are reused: the host memory is
//! allocated once and stays small however large the model, and each piece is copied as soon as
//! it is written.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::buffer::GpuBuffer;
use crate::staging_pool::{PoolChunk, StagingPool};
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
    /// Seconds in creating them and in getting staging memory (driver allocations, or waiting
    /// for a free buffer of the session's pool).
    pub create_s: f64,
    /// Seconds in the callers' fill functions (packing into staging memory).
    pub fill_s: f64,
    /// Seconds in handing the staging memory to the queue (unmap, copy, submit).
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

/// Adds the time since `start` to `counter`; returns now.
fn lap(counter: &AtomicU64, start: Instant) -> Instant {
    let now = Instant::now();
    counter.fetch_add(now.duration_since(start).as_nanos() as u64, Ordering::Relaxed);
    now
}

impl Counters {
    pub(crate) fn pipeline_compiled(&self, start: Instant) {
        self.pipelines.fetch_add(1, Ordering::Relaxed);
        lap(&self.pipeline_ns, start);
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

/// Staging memory for one piece of a buffer.
enum Staging {
    /// Fresh memory from wgpu, copied at the next submission when dropped.
    Queue(wgpu::QueueWriteBufferView),
    /// A buffer of the session's pool.
    Pool(PoolChunk),
}

/// While alive, [`Gpu::buffer_with`] and [`Gpu::buffer_with_parts`] upload through a fixed pool
/// of reusable staging buffers (see the module documentation). Sessions on one [`Gpu`] nest and
/// may overlap across threads: they share one pool, released when the last one ends.
pub struct UploadSession<'g> {
    gpu: &'g Gpu,
    ended: bool,
}

impl UploadSession<'_> {
    /// Ends the session, waiting until every upload made through it is on the device.
    pub fn finish(mut self) -> Result<()> {
        self.ended = true;
        self.gpu.end_upload_session()
    }
}

impl Drop for UploadSession<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.gpu.end_upload_session();
        }
    }
}

impl Gpu {
    /// Starts an [`UploadSession`] whose pool holds `chunks` staging buffers of `chunk_bytes`
    /// (rounded up to a multiple of 4): at least one per thread that fills buffers at once.
    /// Inside an open session, joins it (the pool stays as it is).
    pub fn upload_session(&self, chunk_bytes: u64, chunks: usize) -> Result<UploadSession<'_>> {
        let mut session = self.upload_pool.lock().unwrap();
        match session.as_mut() {
            Some((_, users)) => *users += 1,
            None => *session = Some((Arc::new(StagingPool::new(self, chunk_bytes, chunks)?), 1)),
        }
        Ok(UploadSession { gpu: self, ended: false })
    }

    fn end_upload_session(&self) -> Result<()> {
        let pool = {
            let mut session = self.upload_pool.lock().unwrap();
            let Some((pool, users)) = session.as_mut() else { return Ok(()) };
            *users -= 1;
            if *users > 0 {
                return Ok(());
            }
            let pool = pool.clone();
            *session = None;
            pool
        };
        pool.wait_idle(self)
    }

    /// A storage buffer of `size` bytes (rounded up to a multiple of 4, at least 4) whose
    /// contents `fill(offset, piece)` writes into upload staging memory, piece by piece in
    /// order: each piece is bytes `offset..offset + piece.len()` of the buffer (offsets are
    /// multiples of 4; the pieces cover `size` bytes), every byte of which `fill` must write (the
    /// rounding tail is zeroed here). The data reaches the buffer at the next submission
    /// ([`Gpu::flush_uploads`] sends it without other work; in an [`UploadSession`], at once).
    ///
    /// Callable from several threads at once. An error from `fill` is returned as is (the
    /// buffer is dropped).
    pub fn buffer_with<E: From<GpuError>>(
        &self,
        label: &str,
        size: u64,
        fill: impl Fn(u64, WriteOnly<'_, [u8]>) -> Result<(), E>,
    ) -> Result<GpuBuffer, E> {
        let start = Instant::now();
        let buffer = self.buffer_uninit(label, size)?;
        self.counters.create_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.fill_range(&buffer, 0..buffer.size(), size, &fill)?;
        self.counters.filled_buffers.fetch_add(1, Ordering::Relaxed);
        self.counters.filled_bytes.fetch_add(buffer.size(), Ordering::Relaxed);
        Ok(buffer)
    }

    /// [`Gpu::buffer_with`] filled by `threads` scoped threads at once, each writing one
    /// consecutive part of the buffer piece by piece. The first error in buffer order is
    /// returned.
    pub fn buffer_with_parts<E: From<GpuError> + Send>(
        &self,
        label: &str,
        size: u64,
        threads: usize,
        fill: impl Fn(u64, WriteOnly<'_, [u8]>) -> Result<(), E> + Sync,
    ) -> Result<GpuBuffer, E> {
        let start = Instant::now();
        let buffer = self.buffer_uninit(label, size)?;
        self.counters.create_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let part = size.div_ceil(threads.max(1) as u64).next_multiple_of(4).max(4);
        let parts: Vec<Range<u64>> =
            (0..buffer.size()).step_by(part as usize).map(|a| a..(a + part).min(buffer.size())).collect();
        let results: Vec<Result<(), E>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|range| {
                    let (buffer, fill) = (&buffer, &fill);
                    s.spawn(move || self.fill_range(buffer, range, size, fill))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        results.into_iter().collect::<Result<(), E>>()?;
        self.counters.filled_buffers.fetch_add(1, Ordering::Relaxed);
        self.counters.filled_bytes.fetch_add(buffer.size(), Ordering::Relaxed);
        Ok(buffer)
    }

    /// Writes `range` of `buffer` through staging memory, a piece at a time: `fill` writes the
    /// bytes below `data_end`, the rest is zeroed.
    fn fill_range<E: From<GpuError>>(
        &self,
        buffer: &GpuBuffer,
        range: Range<u64>,
        data_end: u64,
        fill: &impl Fn(u64, WriteOnly<'_, [u8]>) -> Result<(), E>,
    ) -> Result<(), E> {
        let pool = self.upload_pool.lock().unwrap().as_ref().map(|(pool, _)| pool.clone());
        let piece = pool.as_ref().map_or(range.end - range.start, |p| p.chunk_bytes());
        let mut offset = range.start;
        while offset < range.end {
            let start = Instant::now();
            let end = (offset + piece).min(range.end);
            let mut staging = match &pool {
                None => Staging::Queue(self.queue_staging(buffer, offset..end)?),
                Some(pool) => Staging::Pool(pool.acquire(self)?),
            };
            let filling = lap(&self.counters.create_ns, start);
            let data_len = data_end.clamp(offset, end) - offset;
            let result = {
                let mut view;
                let whole = match &mut staging {
                    Staging::Queue(v) => v.slice(..),
                    Staging::Pool(chunk) => {
                        view = chunk.view(end - offset)?;
                        view.slice(..)
                    }
                };
                let (data, mut tail) = whole.split_at(data_len as usize);
                tail.fill(0);
                fill(offset, data)
            };
            let finishing = lap(&self.counters.fill_ns, filling);
            match staging {
                Staging::Queue(view) if result.is_ok() => drop(view), // records the copy
                Staging::Queue(_) => {}
                Staging::Pool(chunk) if result.is_ok() => chunk.copy_to(self, buffer.raw(), offset, end - offset)?,
                Staging::Pool(_) => {} // back to the pool
            }
            lap(&self.counters.finish_ns, finishing);
            result?;
            offset = end;
        }
        Ok(())
    }

    /// Fresh staging memory for `range` of `buffer`, copied into it when the view is dropped.
    fn queue_staging(&self, buffer: &GpuBuffer, range: Range<u64>) -> Result<wgpu::QueueWriteBufferView> {
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
