use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::adapter::{new_instance, select_adapter, AdapterSelector};
use crate::buffer::{BufferRange, GpuBuffer, LiveBuffers, LiveCounter};
use crate::caps::{Capabilities, LimitsPolicy, SubgroupSize};
use crate::pipeline::{PipelineKey, PipelineSlot};
use crate::staging_pool::StagingPool;
use crate::upload::Counters;
use crate::{GpuError, Result};

/// How to open a device.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Which adapter to open.
    pub adapter: AdapterSelector,
    /// How much of the adapter's limits to ask for.
    pub limits: LimitsPolicy,
    /// Features never to request even where the adapter has them (to test fallbacks, e.g.
    /// `wgpu::Features::SUBGROUP`, or `wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX` to keep
    /// prefill on the plain kernels).
    pub disabled_features: wgpu::Features,
    /// Compile kernels with wgpu's runtime checks: clamping of every array and vector index and
    /// a bound on every loop's iterations. Off by default: the checks cost 30-60% of the speed
    /// of the decode and prefill kernels on an H100 (they keep the driver from unrolling loops
    /// and from keeping small arrays in registers; docs/perf.md), every launcher checks the
    /// sizes of its bindings before recording, buffer accesses stay bounded by the device's
    /// robust buffer access, and the kernels' indices are tested against CPU references with
    /// guard regions.
    pub shader_runtime_checks: bool,
}

/// An open device with its queue, negotiated capabilities and pipeline cache.
pub struct Gpu {
    pub(crate) adapter: wgpu::Adapter,
    /// The wgpu device.
    pub device: wgpu::Device,
    /// The device's queue.
    pub queue: wgpu::Queue,
    caps: Capabilities,
    pub(crate) pipelines: Mutex<HashMap<PipelineKey, PipelineSlot>>,
    /// Buffers made through this device that are still alive.
    live: Arc<LiveCounter>,
    pub(crate) shader_runtime_checks: bool,
    pub(crate) counters: Counters,
    /// The staging pool of the open upload sessions and how many are open.
    pub(crate) upload_pool: Mutex<Option<(Arc<StagingPool>, usize)>>,
}

impl Gpu {
    /// Opens a device on the adapter `options` selects, asking for the limits of its policy
    /// and every feature the engine can use that the adapter has.
    pub fn new(options: &ContextOptions) -> Result<Gpu> {
        let instance = new_instance();
        let adapter = select_adapter(&instance, &options.adapter)?;
        Self::from_adapter(adapter, options)
    }

    /// Opens a device on `adapter`, as [`Gpu::new`] does on the adapter it selects.
    pub fn from_adapter(adapter: wgpu::Adapter, options: &ContextOptions) -> Result<Gpu> {
        let info = adapter.get_info();
        let features = Capabilities::wanted_features(adapter.features(), options.disabled_features);
        let limits = options.limits.limits_for(&adapter.limits());
        let experimental = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            // SAFETY: cooperative-matrix kernels run only in subgroup-uniform control flow
            // with the tile shapes the adapter lists; nothing else experimental is used.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("rwkv"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::RequestDevice { adapter: info.name.clone(), message: e.to_string() })?;

        let caps = Capabilities {
            adapter_name: info.name.clone(),
            backend: info.backend,
            device_type: info.device_type,
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            policy: options.limits,
            limits: device.limits(),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features
                .contains(wgpu::Features::SUBGROUP)
                .then_some(SubgroupSize { min: info.subgroup_min_size, max: info.subgroup_max_size }),
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            timestamps_inside_passes: features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
            cooperative_matrix: if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
                adapter.cooperative_matrix_properties()
            } else {
                Vec::new()
            },
            adapter_subgroup_size: SubgroupSize { min: info.subgroup_min_size, max: info.subgroup_max_size },
        };
        Ok(Gpu {
            adapter,
            device,
            queue,
            caps,
            pipelines: Mutex::new(HashMap::new()),
            live: Arc::default(),
            shader_runtime_checks: options.shader_runtime_checks,
            counters: Counters::default(),
            upload_pool: Mutex::new(None),
        })
    }

    /// The granted limits and the features in use.
    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }

    /// The adapter the device was opened on.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    fn check_size(&self, label: &str, size: u64) -> Result<()> {
        let max = self.caps.limits.max_buffer_size;
        if size > max {
            return Err(GpuError::TooLarge { label: label.into(), size, limit: "max_buffer_size", max });
        }
        Ok(())
    }

    /// Fails unless `size` bytes can be bound to one storage binding on this device.
    pub fn check_binding_size(&self, label: &str, size: u64) -> Result<()> {
        let max = self.caps.limits.max_storage_buffer_binding_size;
        if size > max {
            return Err(GpuError::TooLarge {
                label: label.into(),
                size,
                limit: "max_storage_buffer_binding_size",
                max,
            });
        }
        Ok(())
    }

    fn storage_usage() -> wgpu::BufferUsages {
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC
    }

    /// A zero-filled storage buffer (size rounded up to 4 bytes).
    pub fn buffer(&self, label: &str, size: u64) -> Result<GpuBuffer> {
        // wgpu zeroes a buffer nothing has written before its first use.
        self.buffer_uninit(label, size)
    }

    /// A storage buffer of `size` bytes rounded up to a multiple of 4 (at least 4), contents
    /// left to the caller.
    pub(crate) fn buffer_uninit(&self, label: &str, size: u64) -> Result<GpuBuffer> {
        let size = size.max(4).next_multiple_of(4);
        self.check_size(label, size)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: Self::storage_usage(),
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Allocation { label: label.into(), size, message: e.to_string() });
        }
        Ok(GpuBuffer::wrap(buf, label, &self.live))
    }

    /// A storage buffer holding `bytes` (padded with zeros to a multiple of 4).
    pub fn buffer_init(&self, label: &str, bytes: &[u8]) -> Result<GpuBuffer> {
        self.buffer_with(label, bytes.len() as u64, |offset, mut data| {
            let at = offset as usize;
            data.copy_from_slice(&bytes[at..at + data.len()]);
            Ok(())
        })
    }

    /// A storage buffer holding the plain-old-data slice `data`.
    pub fn buffer_from<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<GpuBuffer> {
        self.buffer_init(label, bytemuck::cast_slice(data))
    }

    /// A uniform buffer holding `bytes` (padded to 16 bytes), writable with [`Gpu::write`].
    pub fn uniform(&self, label: &str, bytes: &[u8]) -> Result<GpuBuffer> {
        let size = (bytes.len() as u64).max(16).next_multiple_of(16);
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buf, 0, bytes);
        Ok(GpuBuffer::wrap(buf, label, &self.live))
    }

    /// Writes `bytes` into `buffer` at `offset` (queued; takes effect before the next submit).
    pub fn write(&self, buffer: &GpuBuffer, offset: u64, bytes: &[u8]) {
        self.queue.write_buffer(buffer.raw(), offset, bytes);
    }

    /// Reads `range` back to the CPU, waiting for all submitted work.
    pub fn read(&self, range: BufferRange<'_>) -> Result<Vec<u8>> {
        let label = range.buffer.label().to_string();
        let size = range.size.next_multiple_of(4);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(range.buffer.raw(), range.offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback { label: label.clone(), message: e.to_string() })?;
        rx.recv()
            .map_err(|e| GpuError::Readback { label: label.clone(), message: e.to_string() })?
            .map_err(|e| GpuError::Readback { label: label.clone(), message: e.to_string() })?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback { label: label.clone(), message: e.to_string() })?;
        let mut out = view.to_vec();
        drop(view);
        staging.unmap();
        out.truncate(range.size as usize);
        Ok(out)
    }

    /// Reads a whole buffer back as `T`s.
    pub fn read_as<T: bytemuck::Pod>(&self, buffer: &GpuBuffer) -> Result<Vec<T>> {
        let bytes = self.read(buffer.all())?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Waits until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| GpuError::Submit(e.to_string()))
    }

    /// Number of cached pipelines (for tests and stats).
    pub fn pipeline_count(&self) -> usize {
        self.pipelines.lock().unwrap().values().filter(|s| s.lock().unwrap().is_some()).count()
    }

    /// The storage and uniform buffers made through this device that are still alive (held by a
    /// [`GpuBuffer`] or by a [`crate::BindGroup`] binding them), and their bytes.
    pub fn live_buffers(&self) -> LiveBuffers {
        self.live.get()
    }
}
