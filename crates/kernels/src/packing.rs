//! [`Packing`]: the GPU layout of one or more matrices (see [`crate::formats`]) described without
//! being built, so that any range of its words can be written where it is needed: straight into
//! a buffer's mapped upload memory, by several threads at once, with no intermediate vector.
//!
//! The layout is the little-endian byte image of the `u32` words the kernels read, as the
//! formats module describes: F32 bit patterns, raw F16 halves two per word, or Q8_0 quants then
//! scales; zero padding to a multiple of 16 bytes.

use gpu_core::WriteOnly;
use half::f16;

use crate::formats::{WeightFormat, Q8_0_BLOCK, Q8_0_BLOCK_BYTES};
use crate::{KernelError, Result};

/// One matrix as stored: its bytes in `format`, `rows` rows of `k` values.
#[derive(Clone, Copy, Debug)]
pub struct SourceMatrix<'a> {
    pub format: WeightFormat,
    pub bytes: &'a [u8],
    pub rows: usize,
    pub k: usize,
}

/// The GPU layout of matrices stacked by rows in one format (for Q8_0: all quants first, then
/// all scales, in the same order). Each matrix is stored in that format, or, for an F32 layout,
/// in any format (widened exactly while packing).
#[derive(Clone, Debug)]
pub struct Packing<'a> {
    format: WeightFormat,
    sources: Vec<SourceMatrix<'a>>,
    /// First value of each source in the stacked order, then the total.
    starts: Vec<usize>,
}

/// Words packed at a time on the way to mapped memory (64 KiB: stays in cache).
const CHUNK_WORDS: usize = 16 * 1024;

fn shape_error(what: &'static str, found: usize, why: &'static str) -> KernelError {
    KernelError::Shape { kernel: "formats", what, found: found as u64, why }
}

impl<'a> Packing<'a> {
    /// Matrices stored in `format`, packed in that format.
    pub fn new(format: WeightFormat, matrices: &[MatrixBytes<'a>]) -> Result<Packing<'a>> {
        let sources: Vec<SourceMatrix<'a>> =
            matrices.iter().map(|m| SourceMatrix { format, bytes: m.bytes, rows: m.rows, k: m.k }).collect();
        Self::from_sources(format, &sources)
    }

    /// Matrices each in its own stored format, packed as `format`: the same format, or F32 from
    /// any (F16 and Q8_0 widen exactly).
    pub fn from_sources(format: WeightFormat, sources: &[SourceMatrix<'a>]) -> Result<Packing<'a>> {
        let mut starts = Vec::with_capacity(sources.len() + 1);
        let mut total = 0usize;
        for m in sources {
            if m.format != format && format != WeightFormat::F32 {
                return Err(KernelError::Format {
                    kernel: "formats",
                    found: m.format.name(),
                    wanted: format.name(),
                    why: "only F32 layouts convert from another format",
                });
            }
            m.format.check_row_len(m.k)?;
            let values = m.rows.checked_mul(m.k).ok_or_else(|| shape_error("rows", m.rows, "rows x K overflows"))?;
            if m.bytes.len() != m.format.stored_bytes(values) {
                return Err(shape_error("matrix byte length", m.bytes.len(), "does not match rows x K in this format"));
            }
            starts.push(total);
            total += values;
        }
        starts.push(total);
        Ok(Packing { format, sources: sources.to_vec(), starts })
    }

    pub fn format(&self) -> WeightFormat {
        self.format
    }

    /// Values of all matrices.
    pub fn values(&self) -> usize {
        *self.starts.last().expect("starts ends with the total")
    }

    /// `u32` words of the layout (a multiple of 4).
    pub fn words(&self) -> usize {
        self.format.gpu_words(self.values())
    }

    /// Bytes of the layout (a multiple of 16).
    pub fn bytes(&self) -> u64 {
        self.words() as u64 * 4
    }

    /// The whole layout as words.
    pub fn to_words(&self) -> Result<Vec<u32>> {
        let mut words = vec![0u32; self.words()];
        self.write_words(0, &mut words)?;
        Ok(words)
    }

    /// Writes words `first..first + out.len()` of the layout into `out`.
    pub fn write_words(&self, first: usize, out: &mut [u32]) -> Result<()> {
        let end = first.saturating_add(out.len());
        if end > self.words() {
            return Err(shape_error("packed word range end", end, "is past the end of the packed layout"));
        }
        let n = self.values();
        let (lo, hi) = (first * 4, end * 4); // byte range of `out` in the layout
        let data_bytes = match self.format {
            WeightFormat::F32 => {
                self.write_f32(first, out);
                4 * n
            }
            WeightFormat::F16 => {
                self.write_raw(2, lo, bytemuck::cast_slice_mut(out));
                2 * n
            }
            WeightFormat::Q8_0 => {
                self.write_q8_quants(lo, bytemuck::cast_slice_mut(out));
                self.write_q8_scales(first * 2, bytemuck::cast_slice_mut(out));
                n + 2 * (n / Q8_0_BLOCK)
            }
        };
        if hi > data_bytes {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
            bytes[data_bytes.saturating_sub(lo)..].fill(0);
        }
        Ok(())
    }

    /// Writes bytes `offset..offset + dst.len()` of the layout into `dst` (mapped memory, never
    /// read): straight from the file's bytes where they are stored as the layout wants them (F16,
    /// F32), otherwise packed through a small buffer that stays in cache. `offset` and the length
    /// must be multiples of 4.
    pub fn write_to(&self, offset: u64, mut dst: WriteOnly<'_, [u8]>) -> Result<()> {
        if !offset.is_multiple_of(4) || !dst.len().is_multiple_of(4) {
            return Err(shape_error("packed byte offset", offset as usize, "must be a multiple of 4"));
        }
        let (lo, hi) = (offset as usize, offset as usize + dst.len());
        if hi as u64 > self.bytes() {
            return Err(shape_error("packed byte range end", hi, "is past the end of the packed layout"));
        }
        if let Some(size) = self.raw_value_bytes() {
            let data = size * self.values();
            self.each_overlap(lo / size, hi / size, |m, a, b, at| {
                dst.slice(at * size - lo..(at + b - a) * size - lo).copy_from_slice(&m.bytes[a * size..b * size]);
            });
            if hi > data {
                dst.slice(data.max(lo) - lo..).fill(0);
            }
            return Ok(());
        }
        let first = lo / 4;
        let words = dst.len() / 4;
        let mut chunk = vec![0u32; words.min(CHUNK_WORDS)];
        let mut done = 0;
        while done < words {
            let n = (words - done).min(CHUNK_WORDS);
            self.write_words(first + done, &mut chunk[..n])?;
            dst.slice(done * 4..(done + n) * 4).copy_from_slice(bytemuck::cast_slice(&chunk[..n]));
            done += n;
        }
        Ok(())
    }

    /// Bytes per value where the layout is the sources' bytes as they are: F16, or F32 from F32.
    fn raw_value_bytes(&self) -> Option<usize> {
        match self.format {
            WeightFormat::F16 => Some(2),
            WeightFormat::F32 if self.sources.iter().all(|m| m.format == WeightFormat::F32) => Some(4),
            _ => None,
        }
    }

    /// Calls `f(source, first, end, at)` for every source overlapping values `lo..hi` of the
    /// stacked order: its values `first..end` sit at `at..` in that order.
    fn each_overlap(&self, lo: usize, hi: usize, mut f: impl FnMut(&SourceMatrix<'a>, usize, usize, usize)) {
        let mut i = self.starts.partition_point(|&s| s <= lo).saturating_sub(1);
        while i < self.sources.len() && self.starts[i] < hi {
            let (start, end) = (self.starts[i], self.starts[i + 1]);
            let (a, b) = (lo.max(start), hi.min(end));
            if a < b {
                f(&self.sources[i], a - start, b - start, a);
            }
            i += 1;
        }
    }

    /// Raw little-endian values of `size` bytes (F16 halves or F32 words) copied as they are
    /// stored: layout bytes `lo..lo + out.len()`.
    fn write_raw(&self, size: usize, lo: usize, out: &mut [u8]) {
        let hi = lo + out.len();
        self.each_overlap(lo / size, hi.div_ceil(size), |m, a, b, at| {
            let dst = at * size - lo;
            out[dst..dst + (b - a) * size].copy_from_slice(&m.bytes[a * size..b * size]);
        });
    }

    /// F32 words `first..first + out.len()`: copied, or widened from F16 and Q8_0.
    fn write_f32(&self, first: usize, out: &mut [u32]) {
        self.each_overlap(first, first + out.len(), |m, a, b, at| {
            let dst = &mut out[at - first..at - first + (b - a)];
            match m.format {
                WeightFormat::F32 => {
                    bytemuck::cast_slice_mut::<u32, u8>(dst).copy_from_slice(&m.bytes[4 * a..4 * b]);
                }
                WeightFormat::F16 => {
                    for (d, h) in dst.iter_mut().zip(m.bytes[2 * a..2 * b].chunks_exact(2)) {
                        *d = f16::from_le_bytes([h[0], h[1]]).to_f32().to_bits();
                    }
                }
                WeightFormat::Q8_0 => {
                    for (i, d) in (a..b).zip(dst.iter_mut()) {
                        let block = &m.bytes[i / Q8_0_BLOCK * Q8_0_BLOCK_BYTES..];
                        let scale = f16::from_le_bytes([block[0], block[1]]).to_f32();
                        *d = (scale * block[2 + i % Q8_0_BLOCK] as i8 as f32).to_bits();
                    }
                }
            }
        });
    }

    /// Q8_0 quants (one byte per value, from byte 0): layout bytes `lo..lo + out.len()`.
    fn write_q8_quants(&self, lo: usize, out: &mut [u8]) {
        let hi = lo + out.len();
        self.each_overlap(lo, hi, |m, a, b, at| {
            let dst = &mut out[at - lo..at - lo + (b - a)];
            let (first_block, last_block) = (a / Q8_0_BLOCK, (b - 1) / Q8_0_BLOCK);
            if a % Q8_0_BLOCK == 0 && b % Q8_0_BLOCK == 0 {
                let blocks = m.bytes[first_block * Q8_0_BLOCK_BYTES..(last_block + 1) * Q8_0_BLOCK_BYTES]
                    .chunks_exact(Q8_0_BLOCK_BYTES);
                for (d, block) in dst.chunks_exact_mut(Q8_0_BLOCK).zip(blocks) {
                    d.copy_from_slice(&block[2..]);
                }
                return;
            }
            for (i, d) in (a..b).zip(dst.iter_mut()) {
                *d = m.bytes[i / Q8_0_BLOCK * Q8_0_BLOCK_BYTES + 2 + i % Q8_0_BLOCK];
            }
        });
    }

    /// Q8_0 scales (one f16 per block, after the quants): layout halves `lo..lo + out.len()`.
    fn write_q8_scales(&self, lo: usize, out: &mut [u16]) {
        let hi = lo + out.len();
        let base = self.values() / 2; // the quants take values / 2 halves
        let blocks = self.values() / Q8_0_BLOCK;
        let (b_lo, b_hi) = (lo.max(base) - base, hi.min(base + blocks).saturating_sub(base));
        if b_lo >= b_hi {
            return;
        }
        self.each_overlap(b_lo * Q8_0_BLOCK, b_hi * Q8_0_BLOCK, |m, a, b, at| {
            let dst = base + at / Q8_0_BLOCK - lo;
            let count = (b - a) / Q8_0_BLOCK;
            let src = m.bytes[a / Q8_0_BLOCK * Q8_0_BLOCK_BYTES..].chunks(Q8_0_BLOCK_BYTES);
            for (d, block) in out[dst..dst + count].iter_mut().zip(src) {
                *d = u16::from_le_bytes([block[0], block[1]]);
            }
        });
    }
}

/// The packings, as `format`, of consecutive row blocks of one matrix (`blocks` from
/// [`crate::formats::row_blocks`]: row counts summing to its rows), each its own layout.
pub fn row_block_packings<'a>(
    format: WeightFormat,
    matrix: SourceMatrix<'a>,
    blocks: &[usize],
) -> Result<Vec<Packing<'a>>> {
    let rows: usize = blocks.iter().sum();
    if rows != matrix.rows || matrix.bytes.len() != matrix.format.stored_bytes(rows * matrix.k) {
        return Err(shape_error("matrix byte length", matrix.bytes.len(), "does not match rows x K in this format"));
    }
    let mut out = Vec::with_capacity(blocks.len());
    let mut at = 0;
    for &rows in blocks {
        let len = matrix.format.stored_bytes(rows * matrix.k);
        let block = SourceMatrix { bytes: &matrix.bytes[at..at + len], rows, ..matrix };
        out.push(Packing::from_sources(format, &[block])?);
        at += len;
    }
    Ok(out)
}

/// One matrix of a packed weight in the weight's format: its stored bytes, `rows` rows of `k` values.
#[derive(Clone, Copy, Debug)]
pub struct MatrixBytes<'a> {
    pub bytes: &'a [u8],
    pub rows: usize,
    pub k: usize,
}

/// The GPU layout of one or more matrices of the same format stacked by rows (the packed
/// weight of a segmented projection, e.g. W_r|W_k|W_v or the four LoRA A matrices). The
/// matrices may have different row lengths; for Q8_0 all quants come first, then all scales,
/// in the same order. [`Packing`] writes the same layout in place, a range at a time.
pub fn pack_matrices(format: WeightFormat, matrices: &[MatrixBytes<'_>]) -> Result<Vec<u32>> {
    Packing::new(format, matrices)?.to_words()
}

/// The GPU layout of one matrix.
pub fn pack_matrix(format: WeightFormat, bytes: &[u8], rows: usize, k: usize) -> Result<Vec<u32>> {
    pack_matrices(format, &[MatrixBytes { bytes, rows, k }])
}

/// The GPU layouts of consecutive row blocks of one matrix (`blocks` from [`crate::formats::row_blocks`]).
pub fn pack_row_blocks(format: WeightFormat, bytes: &[u8], k: usize, blocks: &[usize]) -> Result<Vec<Vec<u32>>> {
    let rows = blocks.iter().sum();
    let matrix = SourceMatrix { format, bytes, rows, k };
    row_block_packings(format, matrix, blocks)?.iter().map(Packing::to_words).collect()
}

#[cfg(test)]
#[path = "packing_tests.rs"]
mod tests;
