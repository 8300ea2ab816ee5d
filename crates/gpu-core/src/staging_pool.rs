//! A fixed pool of mapped staging buffers for an upload session: a thread takes one, writes a
//! piece of a buffer into it, and hands it to the queue (unmap, copy, submit, map again); the
//! mapping callback puts it back once the copy is done.

use std::sync::{Arc, Condvar, Mutex};

use crate::{Gpu, GpuError, Result};

pub(crate) struct StagingPool {
    chunk_bytes: u64,
    state: Mutex<PoolState>,
    changed: Condvar,
}

struct PoolState {
    /// Mapped and ready to write.
    free: Vec<wgpu::Buffer>,
    /// Copies submitted whose buffers are not yet mapped again.
    in_flight: usize,
    /// A mapping that failed (device lost): every later upload fails with it.
    error: Option<String>,
}

/// One buffer of the pool, mapped, held by the thread writing into it. Dropped unused, it
/// goes back to the pool.
pub(crate) struct PoolChunk {
    pool: Arc<StagingPool>,
    buffer: Option<wgpu::Buffer>,
}

impl StagingPool {
    /// `chunks` (at least one) mapped buffers of `chunk_bytes` (rounded up to 4).
    pub(crate) fn new(gpu: &Gpu, chunk_bytes: u64, chunks: usize) -> Result<StagingPool> {
        let chunk_bytes = chunk_bytes.max(4).next_multiple_of(4).min(gpu.caps().limits.max_buffer_size);
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let free: Vec<wgpu::Buffer> = (0..chunks.max(1))
            .map(|_| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("upload staging"),
                    size: chunk_bytes,
                    usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: true,
                })
            })
            .collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Allocation {
                label: "upload staging".into(),
                size: chunk_bytes * free.len() as u64,
                message: e.to_string(),
            });
        }
        Ok(StagingPool {
            chunk_bytes,
            state: Mutex::new(PoolState { free, in_flight: 0, error: None }),
            changed: Condvar::new(),
        })
    }

    pub(crate) fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    /// A free buffer, waiting for a copy in flight to finish (or for another thread to hand
    /// one back) when there is none.
    pub(crate) fn acquire(self: &Arc<Self>, gpu: &Gpu) -> Result<PoolChunk> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(e) = &state.error {
                return Err(GpuError::Submit(format!("an upload failed: {e}")));
            }
            if let Some(buffer) = state.free.pop() {
                return Ok(PoolChunk { pool: self.clone(), buffer: Some(buffer) });
            }
            if state.in_flight > 0 {
                drop(state);
                // The mapping callbacks run in here (on this thread or another polling one).
                gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Submit(e.to_string()))?;
                state = self.state.lock().unwrap();
            } else {
                state = self.changed.wait(state).unwrap();
            }
        }
    }

    /// Waits until every copy is done and its buffer back in the pool.
    pub(crate) fn wait_idle(&self, gpu: &Gpu) -> Result<()> {
        loop {
            let state = self.state.lock().unwrap();
            if let Some(e) = &state.error {
                return Err(GpuError::Submit(format!("an upload failed: {e}")));
            }
            if state.in_flight == 0 {
                return Ok(());
            }
            drop(state);
            gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Submit(e.to_string()))?;
        }
    }

    fn put_back(&self, buffer: wgpu::Buffer) {
        self.state.lock().unwrap().free.push(buffer);
        self.changed.notify_all();
    }

    /// The mapping callback of a buffer whose copy has finished.
    fn mapped(&self, buffer: wgpu::Buffer, result: std::result::Result<(), wgpu::BufferAsyncError>) {
        let mut state = self.state.lock().unwrap();
        state.in_flight -= 1;
        match result {
            Ok(()) => state.free.push(buffer),
            Err(e) => state.error = Some(e.to_string()),
        }
        drop(state);
        self.changed.notify_all();
    }
}

impl PoolChunk {
    fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until copied")
    }

    /// The first `len` bytes of the mapped buffer (`len` at most the chunk size).
    pub(crate) fn view(&mut self, len: u64) -> Result<wgpu::BufferViewMut> {
        self.buffer().get_mapped_range_mut(0..len).map_err(|e| GpuError::Submit(format!("mapping staging memory: {e}")))
    }

    /// Copies the first `len` bytes into `dest` at `offset` (submitted now); the buffer returns
    /// to the pool when the copy is done.
    pub(crate) fn copy_to(mut self, gpu: &Gpu, dest: &wgpu::Buffer, offset: u64, len: u64) -> Result<()> {
        let buffer = self.buffer.take().expect("present until copied");
        buffer.unmap();
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("upload") });
        encoder.copy_buffer_to_buffer(&buffer, 0, dest, offset, len);
        gpu.queue.submit([encoder.finish()]);
        self.pool.state.lock().unwrap().in_flight += 1;
        let (pool, again) = (self.pool.clone(), buffer.clone());
        buffer.map_async(wgpu::MapMode::Write, .., move |result| pool.mapped(again, result));
        // Threads waiting for a free buffer can now wait for this copy instead.
        self.pool.changed.notify_all();
        Ok(())
    }
}

impl Drop for PoolChunk {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.put_back(buffer);
        }
    }
}
