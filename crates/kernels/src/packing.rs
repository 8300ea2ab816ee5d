//! [`Packing`]: the GPU layout of one or more matrices (see [`crate::formats`]) described without
//! being built, so that any range of its words can be written where it is needed: straight into
//! a buffer's mapped upload memory, by several threads at once, with no intermediate vector.
//!
//! The layout is the little-endian byte image of the `u32` words the kernels read, as the
//! formats module describes: the stored bytes as they are (F32, F16, BF16 and the block formats
//! without a `d` region), the block bodies then the blocks' `d` (the other block formats), or F32
//! widened from any format; zero padding to a multiple of 16 bytes.

use gpu_core::WriteOnly;

use crate::formats::WeightFormat;
use crate::{KernelError, Result};

/// One matrix as stored: its bytes in `format`, `rows` rows of `k` values.
#[derive(Clone, Copy, Debug)]
pub struct SourceMatrix<'a> {
    pub format: WeightFormat,
    pub bytes: &'a [u8],
    pub rows: usize,
    pub k: usize,
}

/// The GPU layout of matrices stacked by rows in one format (in formats with a `d` region: all
/// block bodies first, then all `d`, in the same order). Each matrix is stored in that format,
/// or, for an F32 layout, in any format (widened exactly while packing).
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
    /// any (decoded as `ggml_quants::dequantize` decodes it).
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
        let (lo, hi) = (first * 4, end * 4); // byte range of `out` in the layout
        if self.widens() {
            self.write_f32(first, out)?;
        } else if self.format.has_d_region() {
            self.write_bodies(lo, bytemuck::cast_slice_mut(out));
            self.write_ds(first * 2, bytemuck::cast_slice_mut(out));
        } else {
            self.write_stored(lo, bytemuck::cast_slice_mut(out));
        }
        let data_bytes = self.format.stored_bytes(self.values());
        if hi > data_bytes {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
            bytes[data_bytes.saturating_sub(lo)..].fill(0);
        }
        Ok(())
    }

    /// Writes bytes `offset..offset + dst.len()` of the layout into `dst` (mapped memory, never
    /// read): straight from the stored bytes where the layout is those bytes, otherwise packed
    /// through a small buffer that stays in cache. `offset` and the length must be multiples of 4.
    pub fn write_to(&self, offset: u64, mut dst: WriteOnly<'_, [u8]>) -> Result<()> {
        if !offset.is_multiple_of(4) || !dst.len().is_multiple_of(4) {
            return Err(shape_error("packed byte offset", offset as usize, "must be a multiple of 4"));
        }
        let (lo, hi) = (offset as usize, offset as usize + dst.len());
        if hi as u64 > self.bytes() {
            return Err(shape_error("packed byte range end", hi, "is past the end of the packed layout"));
        }
        if self.is_stored_bytes() {
            let data = self.format.stored_bytes(self.values());
            self.each_byte_overlap(lo, hi, |m, a, b, at| {
                dst.slice(at - lo..at + b - a - lo).copy_from_slice(&m.bytes[a..b]);
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

    /// Whether this is an F32 layout of sources not all stored as F32 (decoded while packing).
    fn widens(&self) -> bool {
        self.format == WeightFormat::F32 && self.sources.iter().any(|m| m.format != WeightFormat::F32)
    }

    /// Whether the layout is the sources' stored bytes one after another (then padding).
    fn is_stored_bytes(&self) -> bool {
        !self.widens() && !self.format.has_d_region()
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

    /// [`Self::each_overlap`] over the stored bytes of the sources one after another (all in
    /// this layout's format): bytes `first..end` of a source sit at byte `at..` of that order.
    fn each_byte_overlap(&self, lo: usize, hi: usize, mut f: impl FnMut(&SourceMatrix<'a>, usize, usize, usize)) {
        let mut start = 0;
        for m in &self.sources {
            let end = start + m.bytes.len();
            let (a, b) = (lo.max(start), hi.min(end));
            if a < b {
                f(m, a - start, b - start, a);
            }
            if end >= hi {
                break;
            }
            start = end;
        }
    }

    /// The stored bytes one after another: layout bytes `lo..lo + out.len()`.
    fn write_stored(&self, lo: usize, out: &mut [u8]) {
        self.each_byte_overlap(lo, lo + out.len(), |m, a, b, at| {
            out[at - lo..at - lo + (b - a)].copy_from_slice(&m.bytes[a..b]);
        });
    }

    /// F32 words `first..first + out.len()`: copied, or decoded from the sources' formats.
    fn write_f32(&self, first: usize, out: &mut [u32]) -> Result<()> {
        let mut result = Ok(());
        self.each_overlap(first, first + out.len(), |m, a, b, at| {
            let dst = &mut out[at - first..at - first + (b - a)];
            if m.format == WeightFormat::F32 {
                bytemuck::cast_slice_mut::<u32, u8>(dst).copy_from_slice(&m.bytes[4 * a..4 * b]);
                return;
            }
            // The whole blocks holding values a..b.
            let per = m.format.block_elements();
            let (b0, b1) = (a / per, b.div_ceil(per));
            let bytes = &m.bytes[b0 * m.format.block_bytes()..b1 * m.format.block_bytes()];
            match crate::formats::dequantize(m.format, bytes) {
                Ok(values) => {
                    for (d, v) in dst.iter_mut().zip(&values[a - b0 * per..]) {
                        *d = v.to_bits();
                    }
                }
                Err(e) => result = Err(e),
            }
        });
        result
    }

    /// Block bodies (the blocks without their `d`, from byte 0): layout bytes `lo..lo + out.len()`.
    fn write_bodies(&self, lo: usize, out: &mut [u8]) {
        let format = self.format;
        let (per, size, body) = (format.block_elements(), format.block_bytes(), format.body_bytes());
        // The stored block less its `d`, which is its first or last two bytes.
        let skip = if format.split_d() == Some(0) { 2 } else { 0 };
        let hi = (lo + out.len()).min(self.values() / per * body);
        if lo >= hi {
            return;
        }
        self.each_overlap(lo / body * per, hi.div_ceil(body) * per, |m, a, b, at| {
            for (i, g) in (a / per..b / per).zip(at / per..) {
                let block = &m.bytes[i * size + skip..][..body];
                let (start, end) = (g * body, (g + 1) * body);
                let (s, e) = (start.max(lo), end.min(hi));
                out[s - lo..e - lo].copy_from_slice(&block[s - start..e - start]);
            }
        });
    }

    /// The blocks' `d` (one f16 per block, after the bodies): layout halves `lo..lo + out.len()`.
    fn write_ds(&self, lo: usize, out: &mut [u16]) {
        let format = self.format;
        let (per, size) = (format.block_elements(), format.block_bytes());
        let at_byte = format.split_d().unwrap_or(0);
        let hi = lo + out.len();
        let base = format.body_words(self.values()) * 2; // the bodies take this many halves
        let blocks = self.values() / per;
        let (b_lo, b_hi) = (lo.max(base) - base, hi.min(base + blocks).saturating_sub(base));
        if b_lo >= b_hi {
            return;
        }
        self.each_overlap(b_lo * per, b_hi * per, |m, a, b, at| {
            let dst = base + at / per - lo;
            for (d, i) in out[dst..dst + (b - a) / per].iter_mut().zip(a / per..) {
                let block = &m.bytes[i * size + at_byte..];
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
/// matrices may have different row lengths; in formats with a `d` region all block bodies come
/// first, then all `d`, in the same order. [`Packing`] writes the same layout in place, a range at a time.
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
