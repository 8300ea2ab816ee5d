use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{Gpu, GpuError, Result};

/// GPU time spent in one kernel over a recorded submission.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The pipeline's label (kernel name and override constants).
    pub kernel: String,
    /// Number of dispatches of that pipeline timed.
    pub dispatches: u32,
    /// Their total GPU time in nanoseconds.
    pub total_ns: f64,
    /// Bytes its dispatches declared they read ([`crate::Recorder::dispatch_reading`]); 0 when
    /// none did.
    pub bytes: u64,
}

impl KernelTime {
    /// Achieved bandwidth in bytes per second (declared bytes / GPU time), where known.
    pub fn bytes_per_second(&self) -> Option<f64> {
        (self.bytes > 0 && self.total_ns > 0.0).then(|| self.bytes as f64 / (self.total_ns * 1e-9))
    }
}

/// Timestamps written between the dispatches of a [`crate::Recorder`], for a per-kernel time
/// table. Only exists where the device has timestamps inside compute passes.
pub struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    capacity: u32,
    /// Label and declared bytes of the dispatch that starts after each written timestamp
    /// (`None` ends a pass).
    marks: Vec<Option<(Arc<str>, u64)>>,
    period_ns: f64,
}

impl Timer {
    /// A timer for up to `capacity - 1` dispatches per submission, or `None` where the device
    /// cannot write timestamps inside passes.
    pub fn new(gpu: &Gpu, capacity: u32) -> Option<Timer> {
        if !gpu.caps().timestamps_inside_passes {
            return None;
        }
        let capacity = capacity.clamp(2, wgpu::QUERY_SET_MAX_QUERIES);
        let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timer"),
            ty: wgpu::QueryType::Timestamp,
            count: capacity,
        });
        let bytes = capacity as u64 * 8;
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timer/resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timer/readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Some(Timer {
            queries,
            resolve,
            readback,
            capacity,
            marks: Vec::with_capacity(capacity as usize),
            period_ns: gpu.queue.get_timestamp_period() as f64,
        })
    }

    pub(crate) fn reset(&mut self) {
        self.marks.clear();
    }

    /// Writes a timestamp before the dispatch labelled `next` that reads the given bytes (`None`:
    /// at the end of a pass).
    pub(crate) fn mark(&mut self, pass: &mut wgpu::ComputePass<'_>, next: Option<(&Arc<str>, u64)>) {
        if (self.marks.len() as u32) < self.capacity {
            pass.write_timestamp(&self.queries, self.marks.len() as u32);
            self.marks.push(next.map(|(label, bytes)| (label.clone(), bytes)));
        }
    }

    pub(crate) fn resolve(&mut self, enc: &mut wgpu::CommandEncoder) {
        let n = self.marks.len() as u32;
        if n == 0 {
            return;
        }
        enc.resolve_query_set(&self.queries, 0..n, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, n as u64 * 8);
    }

    /// Waits for the submission and returns the time per kernel, largest first.
    pub fn read(&mut self, gpu: &Gpu) -> Result<Vec<KernelTime>> {
        let n = self.marks.len();
        if n < 2 {
            return Ok(Vec::new());
        }
        let err = |m: String| GpuError::Readback { label: "timer".into(), message: m };
        let (tx, rx) = std::sync::mpsc::channel();
        self.readback.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| err(e.to_string()))?;
        rx.recv().map_err(|e| err(e.to_string()))?.map_err(|e| err(e.to_string()))?;
        let ticks: Vec<u64> = {
            let view = self.readback.get_mapped_range(..).map_err(|e| err(e.to_string()))?;
            bytemuck::pod_collect_to_vec(&view[..n * 8])
        };
        self.readback.unmap();
        let mut table: BTreeMap<String, (u32, f64, u64)> = BTreeMap::new();
        for i in 0..n - 1 {
            let Some((label, bytes)) = &self.marks[i] else {
                continue;
            };
            let dt = ticks[i + 1].saturating_sub(ticks[i]) as f64 * self.period_ns;
            let e = table.entry(label.to_string()).or_default();
            e.0 += 1;
            e.1 += dt;
            e.2 += bytes;
        }
        let mut v: Vec<KernelTime> = table
            .into_iter()
            .map(|(kernel, (dispatches, total_ns, bytes))| KernelTime { kernel, dispatches, total_ns, bytes })
            .collect();
        v.sort_by(|a, b| b.total_ns.total_cmp(&a.total_ns));
        Ok(v)
    }
}
