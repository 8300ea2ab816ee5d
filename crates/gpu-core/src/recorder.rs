use crate::{Gpu, GpuBuffer, Pipeline, Timer};

/// Counts of what a recorder put into its submission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub dispatches: u32,
    pub passes: u32,
    pub copies: u32,
}

/// Records many dispatches into as few compute passes as possible and one submission.
///
/// Dispatches go into one open compute pass; a buffer copy closes it (copies cannot live
/// inside a pass) and the next dispatch opens another. With a [`Timer`] attached, a timestamp
/// is written before each dispatch and at the end, giving a per-kernel time table.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    stats: RecorderStats,
    timer: Option<&'g mut Timer>,
}

/// Splits `n` workgroups over x and y so that neither exceeds `max_per_dim`. Kernels recover
/// the flat index as `wid.x + wid.y * nwg.x` and must ignore indices `>= n`.
pub fn workgroups_1d(n: u32, max_per_dim: u32) -> [u32; 3] {
    if n <= max_per_dim {
        [n.max(1), 1, 1]
    } else {
        let y = n.div_ceil(max_per_dim);
        [n.div_ceil(y), y, 1]
    }
}

impl Gpu {
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder {
            gpu: self,
            encoder: Some(
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("recorder") }),
            ),
            pass: None,
            stats: RecorderStats::default(),
            timer: None,
        }
    }
}

impl<'g> Recorder<'g> {
    /// Attaches a timer (ignored on adapters without timestamps inside passes).
    pub fn with_timer(mut self, timer: &'g mut Timer) -> Self {
        timer.reset();
        self.timer = Some(timer);
        self
    }

    fn pass(&mut self) -> &mut wgpu::ComputePass<'static> {
        if self.pass.is_none() {
            let enc = self.encoder.as_mut().expect("recorder already submitted");
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("recorder"), timestamp_writes: None })
                .forget_lifetime();
            self.pass = Some(pass);
            self.stats.passes += 1;
        }
        self.pass.as_mut().unwrap()
    }

    /// Records one dispatch of `pipeline` with one bind group per group.
    pub fn dispatch(&mut self, pipeline: &Pipeline, groups: &[wgpu::BindGroup], workgroups: [u32; 3]) {
        debug_assert_eq!(groups.len() as u32, pipeline.group_count(), "bind groups of {}", pipeline.label());
        let label = pipeline.label().to_string();
        let mut timer = self.timer.take();
        let pass = self.pass();
        if let Some(t) = timer.as_deref_mut() {
            t.mark(pass, &label);
        }
        pass.set_pipeline(&pipeline.pipeline);
        for (i, g) in groups.iter().enumerate() {
            pass.set_bind_group(i as u32, g, &[]);
        }
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        self.timer = timer;
        self.stats.dispatches += 1;
    }

    fn end_pass(&mut self) {
        if let Some(mut pass) = self.pass.take() {
            if let Some(t) = self.timer.as_deref_mut() {
                t.mark(&mut pass, "");
            }
        }
    }

    /// Records a buffer-to-buffer copy (closes the open compute pass). Prefer a copy kernel
    /// on hot paths: on some GPUs `copy_buffer_to_buffer` is far below memory bandwidth.
    pub fn copy(&mut self, src: &GpuBuffer, src_offset: u64, dst: &GpuBuffer, dst_offset: u64, size: u64) {
        self.end_pass();
        let enc = self.encoder.as_mut().expect("recorder already submitted");
        enc.copy_buffer_to_buffer(src.raw(), src_offset, dst.raw(), dst_offset, size);
        self.stats.copies += 1;
    }

    /// Like [`Recorder::copy`], into a raw wgpu buffer (e.g. a mappable staging buffer).
    pub fn copy_to_raw(&mut self, src: &GpuBuffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        self.end_pass();
        let enc = self.encoder.as_mut().expect("recorder already submitted");
        enc.copy_buffer_to_buffer(src.raw(), src_offset, dst, dst_offset, size);
        self.stats.copies += 1;
    }

    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    /// Ends the pass and submits everything recorded as one command buffer.
    pub fn submit(mut self) -> wgpu::SubmissionIndex {
        self.end_pass();
        let mut enc = self.encoder.take().expect("recorder already submitted");
        if let Some(t) = self.timer.as_deref_mut() {
            t.resolve(&mut enc);
        }
        self.gpu.queue.submit([enc.finish()])
    }
}
