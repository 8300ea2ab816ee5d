//! What a projection computes, shared by the `matvec` (one token) and `matmul` (T tokens)
//! launchers: `y = act(W·x + bias)` (optionally added into `y`) over up to four row segments of
//! one packed weight, each segment with its own rows, row length, input and activation.
//!
//! Layouts, for T tokens (T = 1 for matvec):
//! - The weight is the segments' matrices stacked by rows in one GPU buffer
//!   ([`crate::packing::pack_matrices`]); segment s has `rows` rows of `k` values.
//! - Input: segment s reads the `[T, k]` block that starts at element `x_offset * T` of `x`
//!   (token t, column j at `x_offset * T + t * k + j`). For T = 1 that is simply `x[x_offset + j]`:
//!   r, k and v read blocks 0, 2 and 3 of the `[6, C]` (or `[6, T, C]`) token-shifted input.
//! - Output: segment s writes the `[T, rows]` block that starts at element `y_row * T` of `y`,
//!   where `y_row` is the sum of the rows of the segments before it (so the outputs are stacked
//!   like the weight; for T = 1, `y[y_row + m]`). The bias is indexed by `y_row + m`.
//! - A weight too large for one binding is bound as consecutive row blocks (one segment only);
//!   the launcher records one dispatch per block.

use gpu_core::BufferRange;

use crate::formats::WeightFormat;
use crate::{KernelError, Result};

/// Most segments one dispatch computes.
pub const MAX_SEGMENTS: usize = 4;

/// The activation applied to a segment's outputs (after the bias, before a residual add).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    #[default]
    None,
    Tanh,
    Sigmoid,
    /// `max(x, 0)^2` (the channel-mix key).
    ReluSq,
}

impl Activation {
    /// The `ACT_*` constant of common.wgsl.
    pub fn shader_id(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Tanh => 1,
            Activation::Sigmoid => 2,
            Activation::ReluSq => 3,
        }
    }

    /// The activation in f64 (for CPU references).
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Activation::None => v,
            Activation::Tanh => v.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Activation::ReluSq => v.max(0.0).powi(2),
        }
    }
}

/// One row segment of a projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Output rows (weight rows).
    pub rows: u32,
    /// Row length (input width).
    pub k: u32,
    /// Where the segment's input block starts, in elements per token (see the module doc).
    pub x_offset: u32,
    pub activation: Activation,
    /// Whether `bias[y_row + m]` is added before the activation.
    pub bias: bool,
}

impl Segment {
    pub fn new(rows: u32, k: u32) -> Self {
        Segment { rows, k, x_offset: 0, activation: Activation::None, bias: false }
    }
    pub fn input_at(self, x_offset: u32) -> Self {
        Segment { x_offset, ..self }
    }
    pub fn activation(self, activation: Activation) -> Self {
        Segment { activation, ..self }
    }
    pub fn with_bias(self) -> Self {
        Segment { bias: true, ..self }
    }
}

/// A projection: the weight format, its segments, whether the result is added into `y`, and
/// how the weight is split into row blocks for binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Projection {
    pub format: WeightFormat,
    pub segments: Vec<Segment>,
    /// `y += result` instead of `y = result`.
    pub residual: bool,
    /// Row counts of the weight's row blocks, each bound on its own (from
    /// [`crate::formats::row_blocks`]); empty when the weight is one binding.
    pub row_blocks: Vec<u32>,
}

/// One dispatch of a projection: the rows of one weight binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// First row (of the only segment) when the weight is split; 0 otherwise.
    pub base: u32,
    /// Rows of this binding (all segments when not split).
    pub rows: u32,
}

impl Projection {
    /// A plain `rows` x `k` projection: one segment, no bias, no activation.
    pub fn new(format: WeightFormat, rows: u32, k: u32) -> Self {
        Self::segmented(format, vec![Segment::new(rows, k)])
    }
    pub fn segmented(format: WeightFormat, segments: Vec<Segment>) -> Self {
        Projection { format, segments, residual: false, row_blocks: Vec::new() }
    }
    /// Sets the activation of every segment.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.segments.iter_mut().for_each(|s| s.activation = activation);
        self
    }
    /// Adds the bias to every segment.
    pub fn with_bias(mut self) -> Self {
        self.segments.iter_mut().for_each(|s| s.bias = true);
        self
    }
    pub fn residual(mut self) -> Self {
        self.residual = true;
        self
    }
    pub fn split(mut self, row_blocks: Vec<u32>) -> Self {
        self.row_blocks = row_blocks;
        self
    }

    /// Output rows of all segments.
    pub fn rows(&self) -> u32 {
        self.segments.iter().map(|s| s.rows).sum()
    }

    /// Output row where each segment starts.
    pub fn y_rows(&self) -> Vec<u32> {
        self.segments.iter().scan(0, |acc, s| Some(std::mem::replace(acc, *acc + s.rows))).collect()
    }

    pub(crate) fn validate(&self, kernel: &'static str) -> Result<()> {
        let shape = |what, found: u64, why| Err(KernelError::Shape { kernel, what, found, why });
        let n = self.segments.len();
        if n == 0 || n > MAX_SEGMENTS {
            return shape("segment count", n as u64, "must be 1 to 4");
        }
        for s in &self.segments {
            if s.rows == 0 {
                return shape("segment rows", 0, "must be positive");
            }
            self.format.check_row_len(s.k as usize).map_err(|_| KernelError::Shape {
                kernel,
                what: "segment row length K",
                found: s.k as u64,
                why: "must be positive and a whole number of the format's blocks (32 or 256 values)",
            })?;
        }
        let elements: u64 = self.segments.iter().map(|s| s.rows as u64 * s.k as u64).sum();
        if elements >= 1 << 32 {
            return shape("weight elements", elements, "must be below 2^32 (u32 indexing)");
        }
        if !self.row_blocks.is_empty() {
            if n != 1 {
                return shape("segment count", n as u64, "a weight split into row blocks must have one segment");
            }
            let total: u64 = self.row_blocks.iter().map(|&r| r as u64).sum();
            if total != self.rows() as u64 || self.row_blocks.contains(&0) {
                return shape("row block total", total, "row blocks must be positive and add up to the rows");
            }
        }
        Ok(())
    }

    /// The dispatches: one per row block, or one for everything.
    pub(crate) fn parts(&self) -> Vec<Part> {
        if self.row_blocks.is_empty() {
            return vec![Part { base: 0, rows: self.rows() }];
        }
        let mut base = 0;
        self.row_blocks
            .iter()
            .map(|&rows| {
                let p = Part { base, rows };
                base += rows;
                p
            })
            .collect()
    }

    /// Segments as bound in `part` (the rows of the block when split).
    fn part_segments(&self, part: Part) -> Vec<Segment> {
        if self.row_blocks.is_empty() {
            self.segments.clone()
        } else {
            vec![Segment { rows: part.rows, ..self.segments[0] }]
        }
    }

    /// Weight elements of `part`'s binding.
    pub(crate) fn part_elements(&self, part: Part) -> u64 {
        self.part_segments(part).iter().map(|s| s.rows as u64 * s.k as u64).sum()
    }

    /// Bytes `part`'s weight binding must have (its GPU layout, padded to 16 bytes).
    pub(crate) fn part_weight_bytes(&self, part: Part) -> u64 {
        self.format.gpu_words(self.part_elements(part) as usize) as u64 * 4
    }

    /// Bytes a dispatch of `part` for `t` tokens reads at least once (what the launchers pass to
    /// `Recorder::dispatch_reading`): its weight binding, each segment's inputs (`k` per token),
    /// and the bias and residual rows its segments read. The output is not counted.
    pub(crate) fn part_read_bytes(&self, part: Part, t: u32) -> u64 {
        let segs = self.part_segments(part);
        let inputs: u64 = segs.iter().map(|s| s.k as u64).sum();
        self.part_weight_bytes(part) + inputs * t as u64 * 4 + self.part_row_read_bytes(part, t)
    }

    /// Bytes of bias and residual rows a dispatch of `part` for `t` tokens reads.
    pub(crate) fn part_row_read_bytes(&self, part: Part, t: u32) -> u64 {
        let segs = self.part_segments(part);
        let bias: u64 = segs.iter().filter(|s| s.bias).map(|s| s.rows as u64 * 4).sum();
        let residual = if self.residual { part.rows as u64 * t as u64 * 4 } else { 0 };
        bias + residual
    }

    /// Input elements read for `t` tokens.
    pub(crate) fn x_len(&self, t: u32) -> u64 {
        self.segments.iter().map(|s| (s.x_offset as u64 + s.k as u64) * t as u64).max().unwrap_or(0)
    }

    /// Output elements written for `t` tokens.
    pub(crate) fn y_len(&self, t: u32) -> u64 {
        self.rows() as u64 * t as u64
    }

    /// Bias elements read (0 without bias).
    pub(crate) fn bias_len(&self) -> u64 {
        self.segments
            .iter()
            .zip(self.y_rows())
            .filter(|(s, _)| s.bias)
            .map(|(s, y)| (y + s.rows) as u64)
            .max()
            .unwrap_or(0)
    }

    /// Whether every segment's rows and input start on a multiple of `values` elements (and of
    /// 4 input elements), so that the kernels can load whole vec4s.
    pub(crate) fn aligned(&self, values: u32) -> bool {
        let mut woff = 0u64;
        self.segments.iter().all(|s| {
            let ok = s.k % values == 0 && woff.is_multiple_of(values as u64) && s.x_offset % 4 == 0;
            woff += s.rows as u64 * s.k as u64;
            ok
        })
    }

    /// The override constants shared by the matrix kernels, for `part` (see matvec.wgsl).
    pub(crate) fn overrides(&self, part: Part, vec: bool) -> Vec<(&'static str, f64)> {
        const END: [&str; 4] = ["SEG_END0", "SEG_END1", "SEG_END2", "SEG_END3"];
        const K: [&str; 4] = ["SEG_K0", "SEG_K1", "SEG_K2", "SEG_K3"];
        const XOFF: [&str; 4] = ["SEG_XOFF0", "SEG_XOFF1", "SEG_XOFF2", "SEG_XOFF3"];
        const WOFF: [&str; 4] = ["SEG_WOFF0", "SEG_WOFF1", "SEG_WOFF2", "SEG_WOFF3"];
        const YOFF: [&str; 4] = ["SEG_YOFF0", "SEG_YOFF1", "SEG_YOFF2", "SEG_YOFF3"];
        const M: [&str; 4] = ["SEG_M0", "SEG_M1", "SEG_M2", "SEG_M3"];
        const ACT: [&str; 4] = ["SEG_ACT0", "SEG_ACT1", "SEG_ACT2", "SEG_ACT3"];
        let segs = self.part_segments(part);
        let y_rows = self.y_rows();
        let mut o = vec![
            ("DTYPE", self.format.shader_id() as f64),
            ("VEC", vec as u32 as f64),
            ("SEGS", segs.len() as f64),
            ("RESIDUAL", self.residual as u32 as f64),
            ("PART_BASE", part.base as f64),
            ("PART_ROWS", part.rows as f64),
            ("D_HALF0", 2.0 * self.format.body_words(self.part_elements(part) as usize) as f64),
        ];
        let (mut end, mut woff, mut mask) = (0u64, 0u64, 0u32);
        for i in 0..MAX_SEGMENTS {
            match segs.get(i) {
                Some(s) => {
                    end += s.rows as u64;
                    o.push((END[i], end as f64));
                    o.push((K[i], s.k as f64));
                    o.push((XOFF[i], s.x_offset as f64));
                    o.push((WOFF[i], woff as f64));
                    o.push((YOFF[i], y_rows[i] as f64));
                    o.push((M[i], self.segments[i].rows as f64));
                    o.push((ACT[i], s.activation.shader_id() as f64));
                    woff += s.rows as u64 * s.k as u64;
                    mask |= (s.bias as u32) << i;
                }
                None => {
                    // Unused segments end at the last row, so no row maps to them.
                    o.push((END[i], part.rows as f64));
                    o.extend([(K[i], 0.0), (XOFF[i], 0.0), (WOFF[i], 0.0), (YOFF[i], 0.0), (M[i], 0.0), (ACT[i], 0.0)]);
                }
            }
        }
        o.push(("BIAS_MASK", mask as f64));
        o
    }
}

impl Projection {
    /// The checks every launcher of this projection makes before recording `t` tokens: one weight
    /// range per row block, u32-indexable inputs and outputs, x and y large enough (x rounded up to whole vec4s) and the bias
    /// present when a segment has one. Returns the range to bind as `bias` (`x` when none is used).
    pub fn check_bindings<'a>(
        &self,
        kernel: &'static str,
        t: u32,
        weights: usize,
        x: BufferRange<'a>,
        bias: Option<BufferRange<'a>>,
        y: BufferRange<'a>,
    ) -> Result<BufferRange<'a>> {
        if weights != self.parts().len() {
            return Err(KernelError::Shape {
                kernel,
                what: "weight bindings",
                found: weights as u64,
                why: "must be one per row block of the projection",
            });
        }
        let elements = self.x_len(t).max(self.y_len(t));
        if elements >= 1 << 32 {
            return Err(KernelError::Shape {
                kernel,
                what: "input or output elements",
                found: elements,
                why: "must be below 2^32 (u32 indexing)",
            });
        }
        crate::check_len(kernel, "x", x.size, self.x_len(t).next_multiple_of(4) * 4)?;
        crate::check_len(kernel, "y", y.size, self.y_len(t) * 4)?;
        match bias {
            Some(b) => {
                crate::check_len(kernel, "bias", b.size, self.bias_len() * 4)?;
                Ok(b)
            }
            None if self.bias_len() > 0 => {
                Err(KernelError::BufferTooSmall { kernel, binding: "bias", found: 0, needed: self.bias_len() * 4 })
            }
            None => Ok(x),
        }
    }
}
