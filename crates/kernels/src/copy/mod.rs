//! Compute-shader copy of `u32` words between buffers at any word offsets (wgpu's
//! `copy_buffer_to_buffer` runs far below memory bandwidth on some GPUs, and needs 4-byte
//! aligned sizes and no compute pass break).
//!
//! Bindings (group 0): `src` read, `dst` read_write, each bound from the aligned byte offset at
//! or below the requested word; the remainders are the `SRC_SKIP` / `DST_SKIP` overrides, so
//! each distinct pair of remainders is its own pipeline (created on first use, then cached;
//! call [`Copy::prepare`] at load to keep pipeline creation off the per-token path). `src` and
//! `dst` must be different buffers (WebGPU forbids a writable binding aliasing another).

#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub const KERNEL: KernelSource = KernelSource {
    name: "copy",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/copy.wgsl")),
    entry: "main",
    bindings: &[Binding::read(0, 0, "src"), Binding::read_write(0, 1, "dst")],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// Word copies.
pub struct Copy {
    wg: u32,
    align: u64,
}

impl Copy {
    pub fn new(gpu: &Gpu) -> crate::Result<Self> {
        let c = Copy {
            wg: crate::workgroup_size(gpu, 256),
            align: gpu.caps().limits.min_storage_buffer_offset_alignment as u64,
        };
        c.pipeline(gpu, 0, 0)?;
        Ok(c)
    }

    fn pipeline(&self, gpu: &Gpu, src_skip: u64, dst_skip: u64) -> crate::Result<Arc<Pipeline>> {
        Ok(gpu.pipeline(
            &KERNEL,
            &[("SRC_SKIP", src_skip as f64), ("DST_SKIP", dst_skip as f64), ("WG", self.wg as f64)],
        )?)
    }

    /// Byte offset bound and words skipped for word `word` of `range`.
    fn split(&self, range: &BufferRange<'_>, word: u64) -> (u64, u64) {
        let at = range.offset + word * 4;
        let bound = at - at % self.align;
        (bound, (at - bound) / 4)
    }

    /// Creates the pipeline a copy from word `src_word` of `src` to word `dst_word` of `dst` uses.
    pub fn prepare(
        &self,
        gpu: &Gpu,
        src: BufferRange<'_>,
        src_word: u64,
        dst: BufferRange<'_>,
        dst_word: u64,
    ) -> crate::Result<()> {
        self.pipeline(gpu, self.split(&src, src_word).1, self.split(&dst, dst_word).1).map(|_| ())
    }

    /// Copies `words` words from word `src_word` of `src` to word `dst_word` of `dst`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        src: BufferRange<'_>,
        src_word: u64,
        dst: BufferRange<'_>,
        dst_word: u64,
        words: u64,
    ) -> crate::Result<()> {
        let found = u32::try_from(words).unwrap_or(u32::MAX);
        crate::check_shape("copy", "words", found, words > 0 && words < u32::MAX as u64 / 2)?;
        crate::check_len("copy", "src", src.size, (src_word + words) * 4)?;
        crate::check_len("copy", "dst", dst.size, (dst_word + words) * 4)?;
        let (src_at, src_skip) = self.split(&src, src_word);
        let (dst_at, dst_skip) = self.split(&dst, dst_word);
        let pipeline = self.pipeline(gpu, src_skip, dst_skip)?;
        let ranges = [
            BufferRange { buffer: src.buffer, offset: src_at, size: (src_skip + words) * 4 },
            BufferRange { buffer: dst.buffer, offset: dst_at, size: (dst_skip + words) * 4 },
        ];
        let groups = gpu.bind_groups(&pipeline, &[&ranges])?;
        let count = (words as u32).div_ceil(self.wg);
        rec.dispatch(&pipeline, &groups, workgroups_1d(count, gpu.caps().limits.max_compute_workgroups_per_dimension));
        Ok(())
    }
}
