use std::sync::Arc;

use crate::dispatch_list::{Command, DispatchList};
use crate::{BindGroup, Gpu, GpuBuffer, Pipeline, Timer};

/// Counts of what a recorder put into its submission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Compute dispatches recorded (those of replayed lists included).
    pub dispatches: u32,
    /// Compute passes opened.
    pub passes: u32,
    /// Buffer copies and clears recorded (each closes the open pass).
    pub copies: u32,
    /// Bytes the dispatches declared they read ([`Recorder::dispatch_reading`]; 0 for the others).
    pub bytes_read: u64,
}

/// Where a recorder's commands go. One lives per submission, on the stack: boxing the encoder
/// would only add an allocation per submission.
#[allow(clippy::large_enum_variant)]
enum Target {
    /// Into a command buffer, submitted by [`Recorder::submit`].
    Encoder { encoder: wgpu::CommandEncoder, pass: Option<wgpu::ComputePass<'static>> },
    /// Into a [`DispatchList`] (see [`DispatchList::capture`]).
    Capture(Vec<Command>),
}

/// Records many dispatches into as few compute passes as possible and one submission.
///
/// Dispatches go into one open compute pass; a buffer copy closes it (copies cannot live
/// inside a pass) and the next dispatch opens another. With a [`Timer`] attached, a timestamp
/// is written before each dispatch and at the end, giving a per-kernel time table.
///
/// A recorder made by [`DispatchList::capture`] keeps the commands (with their pipelines and
/// bind groups) instead, for [`Recorder::replay`] into later submissions.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    target: Target,
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
    /// A recorder into a new command encoder, submitted by [`Recorder::submit`].
    pub fn recorder(&self) -> Recorder<'_> {
        let encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("recorder") });
        Recorder {
            gpu: self,
            target: Target::Encoder { encoder, pass: None },
            stats: RecorderStats::default(),
            timer: None,
        }
    }
}

impl<'g> Recorder<'g> {
    pub(crate) fn capturing(gpu: &'g Gpu) -> Self {
        Recorder { gpu, target: Target::Capture(Vec::new()), stats: RecorderStats::default(), timer: None }
    }

    /// The captured commands (empty for a recorder that encodes).
    pub(crate) fn into_commands(self) -> Vec<Command> {
        match self.target {
            Target::Capture(commands) => commands,
            Target::Encoder { .. } => Vec::new(),
        }
    }

    /// Attaches a timer (ignored on adapters without timestamps inside passes).
    pub fn with_timer(mut self, timer: &'g mut Timer) -> Self {
        timer.reset();
        self.timer = Some(timer);
        self
    }

    /// Records one dispatch of `pipeline` with one bind group per group.
    pub fn dispatch(&mut self, pipeline: &Pipeline, groups: &[BindGroup], workgroups: [u32; 3]) {
        self.dispatch_reading(pipeline, groups, workgroups, 0);
    }

    /// [`Recorder::dispatch`] of a kernel that knows how many bytes of its bindings it reads at
    /// least once (its weights and input activations, as its launcher counts them): the
    /// [`Timer`] sums them per kernel ([`crate::KernelTime::bytes`]) for an achieved bandwidth,
    /// and [`RecorderStats::bytes_read`] counts them.
    pub fn dispatch_reading(&mut self, pipeline: &Pipeline, groups: &[BindGroup], workgroups: [u32; 3], bytes: u64) {
        debug_assert_eq!(groups.len() as u32, pipeline.group_count(), "bind groups of {}", pipeline.label());
        match &mut self.target {
            Target::Capture(commands) => commands.push(Command::Dispatch {
                pipeline: pipeline.pipeline.clone(),
                label: pipeline.label.clone(),
                groups: groups.into(),
                workgroups,
                bytes,
            }),
            Target::Encoder { .. } => {
                self.encode_dispatch(&pipeline.pipeline, &pipeline.label, groups, workgroups, bytes)
            }
        }
        self.stats.dispatches += 1;
        self.stats.bytes_read += bytes;
    }

    /// Records a dispatch into the open pass (opening one if needed), after a timestamp when a
    /// timer is attached. Allocates nothing of its own.
    fn encode_dispatch(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        label: &Arc<str>,
        groups: &[BindGroup],
        workgroups: [u32; 3],
        bytes: u64,
    ) {
        let Target::Encoder { encoder, pass } = &mut self.target else {
            unreachable!("only an encoding recorder encodes");
        };
        let stats = &mut self.stats;
        let pass = pass.get_or_insert_with(|| {
            stats.passes += 1;
            encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("recorder"), timestamp_writes: None })
                .forget_lifetime()
        });
        if let Some(t) = self.timer.as_deref_mut() {
            t.mark(pass, Some((label, bytes)));
        }
        pass.set_pipeline(pipeline);
        for (i, g) in groups.iter().enumerate() {
            pass.set_bind_group(i as u32, g.raw(), &[]);
        }
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }

    /// Closes the open pass and returns the encoder (`None` while capturing).
    fn encoder_outside_pass(&mut self) -> Option<&mut wgpu::CommandEncoder> {
        let Target::Encoder { encoder, pass } = &mut self.target else {
            return None;
        };
        if let Some(mut pass) = pass.take() {
            if let Some(t) = self.timer.as_deref_mut() {
                t.mark(&mut pass, None);
            }
        }
        Some(encoder)
    }

    /// Records a buffer-to-buffer copy (closes the open compute pass). Prefer a copy kernel
    /// on hot paths: on some GPUs `copy_buffer_to_buffer` is far below memory bandwidth.
    pub fn copy(&mut self, src: &GpuBuffer, src_offset: u64, dst: &GpuBuffer, dst_offset: u64, size: u64) {
        match self.encoder_outside_pass() {
            Some(enc) => enc.copy_buffer_to_buffer(src.raw(), src_offset, dst.raw(), dst_offset, size),
            None => self.push(Command::Copy { src: src.clone(), src_offset, dst: dst.clone(), dst_offset, size }),
        }
        self.stats.copies += 1;
    }

    /// Records a fill of `size` bytes at `offset` of `buffer` with zeros (closes the open pass;
    /// both multiples of 4).
    pub fn clear(&mut self, buffer: &GpuBuffer, offset: u64, size: u64) {
        match self.encoder_outside_pass() {
            Some(enc) => enc.clear_buffer(buffer.raw(), offset, Some(size)),
            None => self.push(Command::Clear { buffer: buffer.clone(), offset, size }),
        }
        self.stats.copies += 1;
    }

    /// Like [`Recorder::copy`], into a raw wgpu buffer (e.g. a mappable staging buffer).
    pub fn copy_to_raw(&mut self, src: &GpuBuffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        match self.encoder_outside_pass() {
            Some(enc) => enc.copy_buffer_to_buffer(src.raw(), src_offset, dst, dst_offset, size),
            None => self.push(Command::CopyToRaw { src: src.clone(), src_offset, dst: dst.clone(), dst_offset, size }),
        }
        self.stats.copies += 1;
    }

    fn push(&mut self, command: Command) {
        if let Target::Capture(commands) = &mut self.target {
            commands.push(command);
        }
    }

    /// Records every command of `list`, in order, as if recorded here: its dispatches join the
    /// open pass, with timestamps between them when a timer is attached. Creates no pipeline or
    /// bind group, takes no lock and allocates nothing of its own per dispatch (wgpu stores each
    /// command in its command buffer).
    pub fn replay(&mut self, list: &DispatchList) {
        if let Target::Capture(commands) = &mut self.target {
            commands.extend(list.commands.iter().cloned());
            let s = list.stats();
            self.stats.dispatches += s.dispatches;
            self.stats.copies += s.copies;
            self.stats.bytes_read += s.bytes_read;
            return;
        }
        for command in &list.commands {
            match command {
                Command::Dispatch { pipeline, label, groups, workgroups, bytes } => {
                    self.encode_dispatch(pipeline, label, groups, *workgroups, *bytes);
                    self.stats.dispatches += 1;
                    self.stats.bytes_read += bytes;
                }
                Command::Copy { src, src_offset, dst, dst_offset, size } => {
                    self.copy(src, *src_offset, dst, *dst_offset, *size)
                }
                Command::CopyToRaw { src, src_offset, dst, dst_offset, size } => {
                    self.copy_to_raw(src, *src_offset, dst, *dst_offset, *size)
                }
                Command::Clear { buffer, offset, size } => self.clear(buffer, *offset, *size),
            }
        }
    }

    /// What has been recorded so far.
    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    /// Ends the pass and submits everything recorded as one command buffer.
    pub fn submit(mut self) -> wgpu::SubmissionIndex {
        self.encoder_outside_pass();
        let Target::Encoder { mut encoder, .. } = self.target else {
            unreachable!("a capturing recorder is only lent out by DispatchList::capture, never submitted");
        };
        if let Some(t) = self.timer.as_deref_mut() {
            t.resolve(&mut encoder);
        }
        self.gpu.queue.submit([encoder.finish()])
    }
}
