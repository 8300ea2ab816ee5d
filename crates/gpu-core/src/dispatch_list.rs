//! [`DispatchList`]: commands recorded once, with the pipelines and bind groups they use, and
//! replayed into many submissions.

use std::sync::Arc;

use crate::{BindGroup, Gpu, GpuBuffer, Recorder, RecorderStats};

/// One recorded command.
#[derive(Clone, Debug)]
pub(crate) enum Command {
    /// `bytes`: what the dispatch reads, as its launcher counted ([`Recorder::dispatch_reading`]).
    Dispatch {
        pipeline: wgpu::ComputePipeline,
        label: Arc<str>,
        groups: Box<[BindGroup]>,
        workgroups: [u32; 3],
        bytes: u64,
    },
    Copy {
        src: GpuBuffer,
        src_offset: u64,
        dst: GpuBuffer,
        dst_offset: u64,
        size: u64,
    },
    CopyToRaw {
        src: GpuBuffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
    Clear {
        buffer: GpuBuffer,
        offset: u64,
        size: u64,
    },
}

/// A fixed sequence of dispatches (and buffer copies) that owns its pipelines, bind groups and
/// workgroup counts. Recording it again ([`Recorder::replay`]) creates nothing; dropping it drops
/// its bind groups, and with them its hold on the buffers they bind.
#[derive(Debug)]
pub struct DispatchList {
    pub(crate) commands: Vec<Command>,
}

impl DispatchList {
    /// Runs `record` against a recorder that keeps what is recorded instead of encoding it: the
    /// launchers' usual `record` calls, unchanged, build the list. Nothing is submitted.
    pub fn capture<E>(gpu: &Gpu, record: impl FnOnce(&mut Recorder<'_>) -> Result<(), E>) -> Result<DispatchList, E> {
        let mut rec = Recorder::capturing(gpu);
        record(&mut rec)?;
        Ok(DispatchList { commands: rec.into_commands() })
    }

    /// The dispatches and copies in the list (`passes` is 0: passes are opened where it is
    /// replayed).
    pub fn stats(&self) -> RecorderStats {
        let mut s = RecorderStats::default();
        for c in &self.commands {
            match c {
                Command::Dispatch { bytes, .. } => {
                    s.dispatches += 1;
                    s.bytes_read += bytes;
                }
                Command::Copy { .. } | Command::CopyToRaw { .. } | Command::Clear { .. } => s.copies += 1,
            }
        }
        s
    }

    /// The kernel labels of its dispatches, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().filter_map(|c| match c {
            Command::Dispatch { label, .. } => Some(&**label),
            _ => None,
        })
    }
}
