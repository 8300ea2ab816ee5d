//! A linear layer on the GPU: one or more weight matrices that read the same input buffer, with
//! the kernels that apply them for one token (matvec) and for T tokens (matmul, or the
//! tensor-core matmul_coop from [`COOP_MIN_TOKENS`] tokens where the device and the weight
//! format allow it and [`PrefillCoop`] does not turn it off).
//!
//! Where every matrix has the same format and the packed weight fits one binding, the matrices
//! are packed into one buffer and run as segments of a single dispatch (r/k/v together; the
//! first stage of the four LoRAs together). Otherwise each matrix is its own projection, split
//! into row blocks where it exceeds the binding limit.

use gpu_core::{BufferRange, Gpu, GpuBuffer, Recorder};
use kernels::formats::{self, WeightFormat};
use kernels::matmul::Matmul;
use kernels::matmul_coop::{CoopPrecision, MatmulCoop};
use kernels::matvec::{Matvec, Prologue, PrologueMatvec};
use kernels::packing::{self, Packing, SourceMatrix};
use kernels::projection::{Activation, Projection, Segment};

use std::borrow::Cow;

use crate::gpu::upload::upload_packed;
use crate::{ModelError, TensorRef};

/// Fewest tokens for which prefill uses the tensor-core kernel: it computes 128 tokens per
/// workgroup (fewer waste it), and below this the plain tiled kernel is as fast.
pub const COOP_MIN_TOKENS: u32 = 128;

/// How [`Linear::record`] picks its kernel for T rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// By token count: matvec for one token, the tensor-core kernel from [`COOP_MIN_TOKENS`]
    /// tokens where allowed, the tiled kernel otherwise (one sequence's tokens).
    ByTokens,
    /// The same kernel for every T (the tensor-core one where allowed, else the tiled one):
    /// rows of independent sequences, whose results must not depend on how many run together.
    SameForAnyCount,
}

/// Whether prefill may use the tensor-core (cooperative-matrix) kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PrefillCoop {
    /// Never: the plain tiled kernel only (f32 inputs: the exact-math golden bars).
    Off,
    /// Where the device has cooperative matrices, inputs rounded to f16 (as llama.cpp's F16
    /// matmuls round activations). The default: it meets the golden README's bar for f16
    /// activations (tests/gpu_golden.rs) at 2-2.5x the plain kernel's prefill speed on an H100.
    #[default]
    Half,
    /// Where the device has them, inputs split into two f16 (about f32 precision on the input
    /// side, twice the tensor-core work).
    Split,
}

impl PrefillCoop {
    /// The tensor-core kernel for `spec`, where this choice, the device and the spec allow it.
    fn kernel(self, gpu: &Gpu, spec: &Projection) -> Result<Option<MatmulCoop>, ModelError> {
        let precision = match self {
            PrefillCoop::Off => return Ok(None),
            PrefillCoop::Half => CoopPrecision::Half,
            PrefillCoop::Split => CoopPrecision::Split,
        };
        if MatmulCoop::device_supports(gpu).is_err() || MatmulCoop::spec_supported(spec).is_err() {
            return Ok(None);
        }
        Ok(Some(MatmulCoop::new(gpu, spec, precision)?))
    }
}

/// One matrix of a linear layer (M rows of K values, in a GGUF weight format) and what to do
/// with its outputs.
pub struct Part<'a> {
    pub name: String,
    /// The format on the GPU.
    pub format: WeightFormat,
    /// The format of `bytes`: the file's, which differs from `format` where the part is widened
    /// to F32 (done while packing).
    pub stored: WeightFormat,
    pub bytes: Cow<'a, [u8]>,
    pub rows: usize,
    pub k: usize,
    /// Where its input starts in the input buffer (elements per token; mix-major blocks).
    pub x_offset: u32,
    pub activation: Activation,
    pub bias: bool,
}

impl<'a> Part<'a> {
    /// The tensor as stored in the file.
    pub fn of(t: TensorRef<'a>) -> Result<Part<'a>, ModelError> {
        let format = crate::tensors::weight_format(t.dtype).ok_or_else(|| ModelError::Unsupported {
            what: format!("tensor '{}' of type {} as a matrix", t.name, t.dtype.name()),
        })?;
        let (rows, k) = (t.shape.get(1).copied().unwrap_or(1) as usize, t.shape[0] as usize);
        Ok(Part {
            name: t.name.to_string(),
            format,
            stored: format,
            bytes: Cow::Borrowed(t.bytes),
            rows,
            k,
            x_offset: 0,
            activation: Activation::None,
            bias: false,
        })
    }

    /// The tensor widened to F32 (decoded exactly as ggml decodes it).
    pub fn f32_of(t: TensorRef<'a>) -> Result<Part<'a>, ModelError> {
        Part::of(t)?.widened()
    }

    /// This part in F32 (decoded exactly as ggml decodes it, while packing).
    pub fn widened(self) -> Result<Part<'a>, ModelError> {
        Ok(Part { format: WeightFormat::F32, ..self })
    }

    /// The matrix as stored, for packing.
    fn source(&self) -> SourceMatrix<'_> {
        SourceMatrix { format: self.stored, bytes: &self.bytes, rows: self.rows, k: self.k }
    }

    pub fn input_at(mut self, x_offset: u32) -> Self {
        self.x_offset = x_offset;
        self
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

struct Unit {
    weights: Vec<GpuBuffer>,
    decode: Matvec,
    /// The one-token kernel with the LayerNorm + token-shift prologue, where asked for and the
    /// device can run it.
    decode_prologue: Option<PrologueMatvec>,
    prefill: Matmul,
    /// The tensor-core kernel for T >= [`COOP_MIN_TOKENS`], where available.
    prefill_coop: Option<MatmulCoop>,
    /// First output row of this unit (in elements per token).
    y_row: u32,
}

impl Unit {
    /// Uploads a unit's weights (`upload`, on this thread) while its kernels are created on
    /// others, so that pipelines the device has not compiled yet compile alongside the packing
    /// and each other (a load's first compilations are its critical path). A device that cannot
    /// run the prologue variant (workgroup memory) keeps the separate kernel. `coop`: whether
    /// prefill may use the tensor-core kernel.
    fn new(
        gpu: &Gpu,
        spec: &Projection,
        prologue: Option<Prologue>,
        coop: PrefillCoop,
        y_row: u32,
        upload: impl FnOnce() -> Result<Vec<GpuBuffer>, ModelError>,
    ) -> Result<Unit, ModelError> {
        std::thread::scope(|s| {
            let decode = s.spawn(|| Matvec::new(gpu, spec));
            let decode_prologue = s.spawn(|| prologue.and_then(|p| PrologueMatvec::new(gpu, spec, p).ok()));
            let prefill = s.spawn(|| Matmul::new(gpu, spec));
            let prefill_coop = s.spawn(|| coop.kernel(gpu, spec));
            let weights = upload()?;
            Ok(Unit {
                weights,
                decode: joined(decode)?,
                decode_prologue: joined(decode_prologue),
                prefill: joined(prefill)?,
                prefill_coop: joined(prefill_coop)?,
                y_row,
            })
        })
    }
}

/// The result of a scoped thread (its panic goes on).
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A linear layer ready to record.
pub struct Linear {
    units: Vec<Unit>,
}

impl Linear {
    /// Uploads `parts` and builds their kernels. `residual`: add into the output instead of
    /// overwriting it. `coop`: whether prefill may use tensor cores.
    /// `prologue`: also build the one-token variant that takes the raw residual and applies
    /// LayerNorm + token shift itself (only the first unit writes the shift state).
    pub fn new(
        gpu: &Gpu,
        label: &str,
        parts: &[Part<'_>],
        residual: bool,
        prologue: Option<Prologue>,
        coop: PrefillCoop,
    ) -> Result<Linear, ModelError> {
        // Only the first unit writes the shift state.
        let prologue_of = |first: bool| prologue.map(|p| p.write_shift(p.write_shift && first));
        let max_binding = gpu.caps().limits.max_storage_buffer_binding_size;
        let formats: Vec<WeightFormat> = parts.iter().map(|p| p.format).collect();
        let same = formats.iter().all(|f| *f == formats[0]);
        let segment = |p: &Part<'_>| {
            let mut s = Segment::new(p.rows as u32, p.k as u32).input_at(p.x_offset).activation(p.activation);
            s.bias = p.bias;
            s
        };
        // One packed, segmented dispatch where possible.
        if same && parts.len() > 1 {
            let sources: Vec<SourceMatrix<'_>> = parts.iter().map(Part::source).collect();
            let packing = Packing::from_sources(formats[0], &sources)?;
            if packing.bytes() <= max_binding {
                let mut spec = Projection::segmented(formats[0], parts.iter().map(segment).collect());
                spec.residual = residual;
                let unit = Unit::new(gpu, &spec, prologue_of(true), coop, 0, || {
                    Ok(vec![upload_packed(gpu, label, &packing)?])
                })?;
                return Ok(Linear { units: vec![unit] });
            }
        }
        // One unit per matrix, each split into row blocks where needed.
        let mut units = Vec::new();
        let mut y_row = 0;
        for (p, &format) in parts.iter().zip(&formats) {
            let (rows, k) = (p.rows, p.k);
            let blocks = formats::row_blocks(format, rows, k, max_binding)?;
            let packed = packing::row_block_packings(format, p.source(), &blocks)?;
            let upload = || {
                packed
                    .iter()
                    .enumerate()
                    .map(|(i, w)| upload_packed(gpu, &format!("{label}/{}[{i}]", p.name), w))
                    .collect::<Result<Vec<_>, _>>()
            };
            let mut spec = Projection::segmented(format, vec![segment(p)]);
            spec.residual = residual;
            if blocks.len() > 1 {
                spec = spec.split(blocks.iter().map(|&b| b as u32).collect());
            }
            units.push(Unit::new(gpu, &spec, prologue_of(units.is_empty()), coop, y_row, upload)?);
            y_row += rows as u32;
        }
        Ok(Linear { units })
    }

    /// Whether every unit has the prologue variant.
    pub fn has_prologue(&self) -> bool {
        self.units.iter().all(|u| u.decode_prologue.is_some())
    }

    /// Records `y = W·mix(LN(x))` (or `+=`) for one token from the raw residual `x`, reading
    /// the shift state's half `parity` of `shift` ([2, C]) and, if this layer writes it, writing
    /// the other half. `vecs` holds the LayerNorm and mix rows. Needs [`Self::has_prologue`].
    #[allow(clippy::too_many_arguments)]
    pub fn record_prologue(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        parity: u32,
        x: BufferRange<'_>,
        vecs: BufferRange<'_>,
        shift: BufferRange<'_>,
        y: BufferRange<'_>,
    ) -> Result<(), ModelError> {
        for u in &self.units {
            let w: Vec<BufferRange<'_>> = u.weights.iter().map(|b| b.all()).collect();
            let off = u.y_row as u64 * 4;
            let y_part = y.buffer.range(y.offset + off, y.size - off);
            let kernel = u.decode_prologue.as_ref().expect("has_prologue() checked by the caller");
            kernel.record(gpu, rec, parity, x, vecs, shift, &w, None, y_part)?;
        }
        Ok(())
    }

    /// Bytes of its weight buffers.
    pub fn bytes(&self) -> u64 {
        self.units.iter().flat_map(|u| &u.weights).map(GpuBuffer::size).sum()
    }

    /// Records `y = W·x` (or `y += W·x`) for `t` tokens. Segment outputs are mix-major: unit `u`
    /// writes its `[T, rows]` block at `y_row·T`. `bias` is indexed by output row.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder<'_>,
        t: u32,
        choice: KernelChoice,
        x: BufferRange<'_>,
        bias: Option<BufferRange<'_>>,
        y: BufferRange<'_>,
    ) -> Result<(), ModelError> {
        for u in &self.units {
            let w: Vec<BufferRange<'_>> = u.weights.iter().map(|b| b.all()).collect();
            let off = u.y_row as u64 * t as u64 * 4;
            let y_part = y.buffer.range(y.offset + off, y.size - off);
            let bias_part = bias.map(|b| {
                let boff = u.y_row as u64 * 4;
                b.buffer.range(b.offset + boff, b.size - boff)
            });
            let min_coop = if choice == KernelChoice::SameForAnyCount { 1 } else { COOP_MIN_TOKENS };
            if t == 1 && choice == KernelChoice::ByTokens {
                u.decode.record(gpu, rec, x, &w, bias_part, y_part)?;
            } else if let Some(coop) = u.prefill_coop.as_ref().filter(|_| t >= min_coop) {
                coop.record(gpu, rec, t, x, &w, bias_part, y_part)?;
            } else {
                u.prefill.record(gpu, rec, t, x, &w, bias_part, y_part)?;
            }
        }
        Ok(())
    }
}
