use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::kernel::{Access, KernelSource};
use crate::{Gpu, GpuError, Result};

/// Cache key of a pipeline: the kernel and its override constants (as bit patterns).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    name: &'static str,
    entry: &'static str,
    overrides: Vec<(String, u64)>,
}

/// A pipeline cache entry: empty until its first creation succeeds. Threads asking for the same
/// pipeline wait on its lock instead of compiling it twice.
pub(crate) type PipelineSlot = Arc<Mutex<Option<Arc<Pipeline>>>>;

/// A compute pipeline with one layout per bind group, labelled with its kernel's name.
#[derive(Debug)]
pub struct Pipeline {
    /// The kernel the pipeline was compiled from.
    pub kernel: KernelSource,
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layouts: Vec<wgpu::BindGroupLayout>,
    pub(crate) label: Arc<str>,
}

impl Pipeline {
    /// The kernel name plus its override constants, e.g. `matvec[ROWS=4]`.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The wgpu pipeline.
    pub fn raw(&self) -> &wgpu::ComputePipeline {
        &self.pipeline
    }
    /// Number of bind groups (one layout each).
    pub fn group_count(&self) -> u32 {
        self.layouts.len() as u32
    }
}

fn layout_entry(b: &crate::Binding) -> wgpu::BindGroupLayoutEntry {
    let ty = match b.access {
        Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
        Access::Uniform => wgpu::BufferBindingType::Uniform,
    };
    wgpu::BindGroupLayoutEntry {
        binding: b.binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    }
}

impl Gpu {
    /// Checks a kernel against the device's features and limits before any wgpu call, so an
    /// unsupported kernel is a typed error naming the kernel and the limit, never a panic.
    fn check_kernel(&self, k: &KernelSource) -> Result<()> {
        let caps = self.caps();
        let missing = |feature| GpuError::MissingFeature { kernel: k.name.into(), feature };
        if k.needs.shader_f16 && !caps.shader_f16 {
            return Err(missing("SHADER_F16"));
        }
        if k.needs.subgroups && caps.subgroups.is_none() {
            return Err(missing("SUBGROUP"));
        }
        if k.needs.cooperative_matrix && !caps.has_cooperative_matrix() {
            return Err(missing("EXPERIMENTAL_COOPERATIVE_MATRIX"));
        }
        let over = |limit, needed: u64, granted: u64| GpuError::LimitExceeded {
            kernel: k.name.into(),
            limit,
            needed,
            granted,
            policy: caps.policy.name(),
        };
        let l = &caps.limits;
        if k.storage_buffer_count() > l.max_storage_buffers_per_shader_stage as u64 {
            return Err(over(
                "max_storage_buffers_per_shader_stage",
                k.storage_buffer_count(),
                l.max_storage_buffers_per_shader_stage as u64,
            ));
        }
        if k.uniform_buffer_count() > l.max_uniform_buffers_per_shader_stage as u64 {
            return Err(over(
                "max_uniform_buffers_per_shader_stage",
                k.uniform_buffer_count(),
                l.max_uniform_buffers_per_shader_stage as u64,
            ));
        }
        if k.group_count() > l.max_bind_groups {
            return Err(over("max_bind_groups", k.group_count() as u64, l.max_bind_groups as u64));
        }
        Ok(())
    }

    /// The pipeline of `kernel` with `overrides` applied, created once and cached.
    pub fn pipeline(&self, kernel: &KernelSource, overrides: &[(&str, f64)]) -> Result<Arc<Pipeline>> {
        let mut ov: Vec<(String, u64)> = overrides.iter().map(|(n, v)| (n.to_string(), v.to_bits())).collect();
        ov.sort();
        let key = PipelineKey { name: kernel.name, entry: kernel.entry, overrides: ov };
        let slot = self.pipelines.lock().unwrap().entry(key).or_default().clone();
        let mut cached = slot.lock().unwrap();
        if let Some(p) = cached.as_ref() {
            return Ok(p.clone());
        }
        let start = Instant::now();
        self.check_kernel(kernel)?;
        let label: Arc<str> = if overrides.is_empty() {
            kernel.name.into()
        } else {
            let parts: Vec<String> = overrides.iter().map(|(n, v)| format!("{n}={v}")).collect();
            format!("{}[{}]", kernel.name, parts.join(",")).into()
        };
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(kernel.name),
            source: wgpu::ShaderSource::Wgsl(kernel.wgsl.into()),
        };
        let module = if self.shader_runtime_checks {
            self.device.create_shader_module(desc)
        } else {
            // SAFETY: see ContextOptions::shader_runtime_checks: every launcher checks its
            // bindings' sizes before recording, and the kernels index inside them.
            unsafe { self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        };
        let layouts: Vec<wgpu::BindGroupLayout> = (0..kernel.group_count())
            .map(|g| {
                let entries: Vec<_> = kernel.group(g).iter().map(layout_entry).collect();
                self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&format!("{}/group{g}", kernel.name)),
                    entries: &entries,
                })
            })
            .collect();
        let layout_refs: Vec<Option<&wgpu::BindGroupLayout>> = layouts.iter().map(Some).collect();
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.name),
            bind_group_layouts: &layout_refs,
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: overrides,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let errors: Vec<String> = [pollster::block_on(internal.pop()), pollster::block_on(validation.pop())]
            .into_iter()
            .flatten()
            .map(|e| error_chain(&e))
            .collect();
        if !errors.is_empty() {
            return Err(GpuError::Pipeline { kernel: label.to_string(), message: errors.join("; ") });
        }
        let p = Arc::new(Pipeline { kernel: *kernel, pipeline, layouts, label });
        *cached = Some(p.clone());
        self.counters.pipeline_compiled(start);
        Ok(p)
    }
}

/// The full message of a wgpu error with its sources (some naga errors carry no span and put
/// the useful part in a source).
pub(crate) fn error_chain(e: &wgpu::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        src = s.source();
    }
    msg
}
