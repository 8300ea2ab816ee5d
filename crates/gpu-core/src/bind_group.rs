//! Bind groups, owned by whoever records with them: nothing here caches one, so a bind group
//! and the buffers it binds are freed when its last owner drops it.

use std::sync::Arc;

use crate::buffer::{BufferRange, GpuBuffer};
use crate::kernel::Access;
use crate::pipeline::{error_chain, Pipeline};
use crate::{Gpu, GpuError, Result};

/// A bind group and the buffers it binds. Like wgpu's own bind group it keeps those buffers
/// alive (and counted in [`Gpu::live_buffers`]) until it is dropped. Clones share it.
#[derive(Clone, Debug)]
pub struct BindGroup {
    raw: wgpu::BindGroup,
    buffers: Arc<[GpuBuffer]>,
}

impl BindGroup {
    /// The wgpu bind group.
    pub fn raw(&self) -> &wgpu::BindGroup {
        &self.raw
    }

    /// The buffers bound, in binding order.
    pub fn buffers(&self) -> &[GpuBuffer] {
        &self.buffers
    }
}

impl Gpu {
    /// A new bind group binding `ranges` (in binding order) to `group` of `pipeline`, created
    /// inside an error scope: a binding the device refuses is a typed error naming the kernel.
    pub fn bind_group(&self, pipeline: &Pipeline, group: u32, ranges: &[BufferRange<'_>]) -> Result<BindGroup> {
        let decl = pipeline.kernel.group(group);
        let layout = pipeline.layouts.get(group as usize).ok_or_else(|| GpuError::BindingCount {
            kernel: pipeline.label().into(),
            group,
            expected: 0,
            found: ranges.len(),
        })?;
        if decl.len() != ranges.len() {
            return Err(GpuError::BindingCount {
                kernel: pipeline.label().into(),
                group,
                expected: decl.len(),
                found: ranges.len(),
            });
        }
        let l = &self.caps().limits;
        for (d, r) in decl.iter().zip(ranges) {
            let (max, limit) = if d.access == Access::Uniform {
                (l.max_uniform_buffer_binding_size, "max_uniform_buffer_binding_size")
            } else {
                (l.max_storage_buffer_binding_size, "max_storage_buffer_binding_size")
            };
            if r.size > max {
                return Err(GpuError::TooLarge {
                    label: format!("{} (binding '{}' of kernel '{}')", r.buffer.label(), d.name, pipeline.label()),
                    size: r.size,
                    limit,
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
        let raw = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("{}/group{group}", pipeline.label())),
            layout,
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::BindGroup { kernel: pipeline.label().into(), group, message: error_chain(&e) });
        }
        Ok(BindGroup { raw, buffers: ranges.iter().map(|r| r.buffer.clone()).collect() })
    }

    /// New bind groups for every group of `pipeline`, one slice of ranges per group.
    pub fn bind_groups(&self, pipeline: &Pipeline, groups: &[&[BufferRange<'_>]]) -> Result<Vec<BindGroup>> {
        groups.iter().enumerate().map(|(g, r)| self.bind_group(pipeline, g as u32, r)).collect()
    }
}
