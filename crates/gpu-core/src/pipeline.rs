use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::buffer::BufferRange;
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

/// Cache key of a bind group: the layout and the exact buffer ranges bound.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BindGroupKey {
    layout: wgpu::BindGroupLayout,
    ranges: Vec<(u64, u64, u64)>,
}

/// A compute pipeline with one layout per bind group, labelled with its kernel's name.
#[derive(Debug)]
pub struct Pipeline {
    pub kernel: KernelSource,
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layouts: Vec<wgpu::BindGroupLayout>,
    label: String,
}

impl Pipeline {
    /// The kernel name plus its override constants, e.g. `matvec[ROWS=4]`.
    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn raw(&self) -> &wgpu::ComputePipeline {
        &self.pipeline
    }
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
        let label = if overrides.is_empty() {
            kernel.name.to_string()
        } else {
            let parts: Vec<String> = overrides.iter().map(|(n, v)| format!("{n}={v}")).collect();
            format!("{}[{}]", kernel.name, parts.join(","))
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
            return Err(GpuError::Pipeline { kernel: label, message: errors.join("; ") });
        }
        let p = Arc::new(Pipeline { kernel: *kernel, pipeline, layouts, label });
        *cached = Some(p.clone());
        self.counters.pipeline_compiled(start);
        Ok(p)
    }

    /// The bind group binding `ranges` (in binding order) to `group` of `pipeline`, created
    /// once per distinct set of ranges and cached.
    pub fn bind_group(&self, pipeline: &Pipeline, group: u32, ranges: &[BufferRange<'_>]) -> Result<wgpu::BindGroup> {
        let decl = pipeline.kernel.group(group);
        let layout = pipeline.layouts.get(group as usize).ok_or_else(|| GpuError::BindingCount {
            kernel: pipeline.label.clone(),
            group,
            expected: 0,
            found: ranges.len(),
        })?;
        if decl.len() != ranges.len() {
            return Err(GpuError::BindingCount {
                kernel: pipeline.label.clone(),
                group,
                expected: decl.len(),
                found: ranges.len(),
            });
        }
        let key = BindGroupKey { layout: layout.clone(), ranges: ranges.iter().map(|r| r.key()).collect() };
        if let Some(bg) = self.bind_groups.lock().unwrap().get(&key) {
            return Ok(bg.clone());
        }
        let l = &self.caps().limits;
        for (d, r) in decl.iter().zip(ranges) {
            let max = if d.access == Access::Uniform {
                l.max_uniform_buffer_binding_size
            } else {
                l.max_storage_buffer_binding_size
            };
            if r.size > max {
                return Err(GpuError::TooLarge {
                    label: format!("{} (binding '{}' of kernel '{}')", r.buffer.label(), d.name, pipeline.label),
                    size: r.size,
                    limit: if d.access == Access::Uniform {
                        "max_uniform_buffer_binding_size"
                    } else {
                        "max_storage_buffer_binding_size"
                    },
                    max,
                });
            }
        }
        let entries: Vec<wgpu::BindGroupEntry> = decl
            .iter()
            .zip(ranges)
            .map(|(d, r)| wgpu::BindGroupEntry { binding: d.binding, resource: r.as_binding() })
            .collect();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("{}/group{group}", pipeline.label)),
            layout,
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::BindGroup { kernel: pipeline.label.clone(), group, message: error_chain(&e) });
        }
        self.bind_groups.lock().unwrap().insert(key, bg.clone());
        Ok(bg)
    }

    /// Bind groups for every group of `pipeline`, one slice of ranges per group.
    pub fn bind_groups(&self, pipeline: &Pipeline, groups: &[&[BufferRange<'_>]]) -> Result<Vec<wgpu::BindGroup>> {
        groups.iter().enumerate().map(|(g, r)| self.bind_group(pipeline, g as u32, r)).collect()
    }
}

/// The full message of a wgpu error with its sources (some naga errors carry no span and put
/// the useful part in a source).
fn error_chain(e: &wgpu::Error) -> String {
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
