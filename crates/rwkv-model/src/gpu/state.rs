//! The recurrent state on the GPU: per layer the two token-shift vectors and the f32 WKV state.
//! Created, reset, cloned, read back, and saved to / loaded from a file so that a conversation
//! can resume.

use std::io::{Read, Write};
use std::path::Path;

use gpu_core::{BufferRange, Gpu, GpuBuffer, Recorder};

use crate::gpu::Dims;
use crate::ModelError;

const MAGIC: &[u8; 8] = b"RWKV7STA";
const VERSION: u32 = 1;

/// The state of one sequence. All three buffers hold every layer back to back.
///
/// Each token-shift vector has two halves: the current one (`parity`) holds the previous token's
/// LayerNorm output. Kernels that normalise many tokens update it in place; the one-token matvec
/// prologue reads it and writes the new vector into the other half, and the parity flips, so no
/// dispatch reads what it writes.
pub struct State {
    dims: Dims,
    parity: std::cell::Cell<u32>,
    /// [L, 2, C]: the previous token's ln1 output (half `parity`).
    pub(crate) shift_att: GpuBuffer,
    /// [L, 2, C]: the previous token's ln2 output (half `parity`).
    pub(crate) shift_ffn: GpuBuffer,
    /// [L, H, N, N]: WKV state, row = value channel, column = key channel.
    pub(crate) wkv: GpuBuffer,
}

/// A state read back to the CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSnapshot {
    /// [L, C]: per layer, the previous token's ln1 output (spec §3.0 `sA`).
    pub shift_att: Vec<f32>,
    /// [L, C]: per layer, the previous token's ln2 output (spec §3.0 `sF`).
    pub shift_ffn: Vec<f32>,
    /// [L, H, N, N]: per layer, the WKV state; row = value channel, column = key channel.
    pub wkv: Vec<f32>,
}

impl State {
    pub(crate) fn new(gpu: &Gpu, dims: Dims) -> Result<State, ModelError> {
        let vec_bytes = (dims.n_layer * 2 * dims.c * 4) as u64;
        let wkv_bytes = (dims.n_layer * dims.c * dims.head_size * 4) as u64;
        Ok(State {
            dims,
            parity: std::cell::Cell::new(0),
            shift_att: gpu.buffer("state/shift_att", vec_bytes)?,
            shift_ffn: gpu.buffer("state/shift_ffn", vec_bytes)?,
            wkv: gpu.buffer("state/wkv", wkv_bytes)?,
        })
    }

    /// Bytes of its GPU buffers.
    pub fn bytes(&self) -> u64 {
        self.shift_att.size() + self.shift_ffn.size() + self.wkv.size()
    }

    /// The model shape this state belongs to.
    pub fn dims(&self) -> Dims {
        self.dims
    }

    fn current_half<'a>(&self, buffer: &'a GpuBuffer, layer: usize) -> BufferRange<'a> {
        let b = (self.dims.c * 4) as u64;
        buffer.range((layer as u64 * 2 + self.parity.get() as u64) * b, b)
    }

    fn both_halves<'a>(&self, buffer: &'a GpuBuffer, layer: usize) -> BufferRange<'a> {
        let b = (self.dims.c * 4) as u64;
        buffer.range(layer as u64 * 2 * b, 2 * b)
    }

    /// The current ln1 shift vector of `layer`.
    pub(crate) fn shift_att(&self, layer: usize) -> BufferRange<'_> {
        self.current_half(&self.shift_att, layer)
    }

    pub(crate) fn shift_ffn(&self, layer: usize) -> BufferRange<'_> {
        self.current_half(&self.shift_ffn, layer)
    }

    /// Both halves of `layer`'s ln1 shift vector ([2, C], for the matvec prologue).
    pub(crate) fn shift_att_pair(&self, layer: usize) -> BufferRange<'_> {
        self.both_halves(&self.shift_att, layer)
    }

    pub(crate) fn shift_ffn_pair(&self, layer: usize) -> BufferRange<'_> {
        self.both_halves(&self.shift_ffn, layer)
    }

    pub(crate) fn parity(&self) -> u32 {
        self.parity.get()
    }

    /// Makes half `parity` the current one (to record a step for either parity).
    pub(crate) fn set_parity(&self, parity: u32) {
        self.parity.set(parity);
    }

    /// After a step whose prologue wrote the other halves.
    pub(crate) fn flip(&self) {
        self.parity.set(1 - self.parity.get());
    }

    pub(crate) fn wkv(&self, layer: usize) -> BufferRange<'_> {
        let b = (self.dims.c * self.dims.head_size * 4) as u64;
        self.wkv.range(layer as u64 * b, b)
    }

    /// Back to the start of a sequence (all zeros).
    pub fn reset(&self, gpu: &Gpu) {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for b in [&self.shift_att, &self.shift_ffn, &self.wkv] {
            enc.clear_buffer(b.raw(), 0, None);
        }
        gpu.queue.submit([enc.finish()]);
        self.parity.set(0);
    }

    /// A copy of this state (for branching a conversation).
    pub fn try_clone(&self, gpu: &Gpu) -> Result<State, ModelError> {
        let copy = State::new(gpu, self.dims)?;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for (src, dst) in
            [(&self.shift_att, &copy.shift_att), (&self.shift_ffn, &copy.shift_ffn), (&self.wkv, &copy.wkv)]
        {
            enc.copy_buffer_to_buffer(src.raw(), 0, dst.raw(), 0, src.size());
        }
        gpu.queue.submit([enc.finish()]);
        copy.parity.set(self.parity.get());
        Ok(copy)
    }

    /// Records copying this state into `to` (same shape), which takes this parity: call
    /// before submitting, with no other use of `to` in between.
    pub(crate) fn record_copy(&self, rec: &mut Recorder<'_>, to: &State) {
        for (src, dst) in [(&self.shift_att, &to.shift_att), (&self.shift_ffn, &to.shift_ffn), (&self.wkv, &to.wkv)] {
            rec.copy(src, 0, dst, 0, src.size());
        }
        to.parity.set(self.parity.get());
    }

    /// The current halves of the shift vectors ([L, C] each) and the WKV state.
    pub fn read(&self, gpu: &Gpu) -> Result<StateSnapshot, ModelError> {
        let (c, p) = (self.dims.c, self.parity.get() as usize);
        let current =
            |all: Vec<f32>| -> Vec<f32> { all.chunks(2 * c).flat_map(|l| l[p * c..(p + 1) * c].to_vec()).collect() };
        Ok(StateSnapshot {
            shift_att: current(gpu.read_as(&self.shift_att)?),
            shift_ffn: current(gpu.read_as(&self.shift_ffn)?),
            wkv: gpu.read_as(&self.wkv)?,
        })
    }

    /// Overwrites the state with `s` (queued; takes effect before the next submission). Fails if
    /// a part of `s` does not have this state's size ([`ModelError::StateMismatch`]).
    pub fn write(&self, gpu: &Gpu, s: &StateSnapshot) -> Result<(), ModelError> {
        let expect = |what: &'static str, found: usize, want: u64| {
            if found as u64 * 4 != want {
                Err(ModelError::StateMismatch { what, expected: want / 4, found: found as u64 })
            } else {
                Ok(())
            }
        };
        expect("shift_att", s.shift_att.len(), self.shift_att.size() / 2)?;
        expect("shift_ffn", s.shift_ffn.len(), self.shift_ffn.size() / 2)?;
        expect("wkv", s.wkv.len(), self.wkv.size())?;
        // Into half 0 of each layer, which becomes the current half.
        let c = self.dims.c;
        let both = |v: &[f32]| -> Vec<f32> { v.chunks(c).flat_map(|l| l.iter().chain(l.iter()).copied()).collect() };
        gpu.write(&self.shift_att, 0, bytemuck::cast_slice(&both(&s.shift_att)));
        gpu.write(&self.shift_ffn, 0, bytemuck::cast_slice(&both(&s.shift_ffn)));
        gpu.write(&self.wkv, 0, bytemuck::cast_slice(&s.wkv));
        self.parity.set(0);
        Ok(())
    }

    /// Saves the state to `path` (a small header with the model shape, then the f32 data).
    pub fn save(&self, gpu: &Gpu, path: &Path) -> Result<(), ModelError> {
        let s = self.read(gpu)?;
        let io = |e: std::io::Error| ModelError::StateFile { path: path.display().to_string(), message: e.to_string() };
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        f.write_all(MAGIC).map_err(io)?;
        for v in [VERSION, self.dims.n_layer as u32, self.dims.c as u32, self.dims.head_size as u32] {
            f.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        for part in [&s.shift_att, &s.shift_ffn, &s.wkv] {
            f.write_all(bytemuck::cast_slice(part)).map_err(io)?;
        }
        f.flush().map_err(io)
    }

    /// Loads a state saved by [`State::save`] for a model of the same shape.
    pub fn load(&self, gpu: &Gpu, path: &Path) -> Result<(), ModelError> {
        let p = path.display().to_string();
        let bad = |message: String| ModelError::StateFile { path: p.clone(), message };
        let mut f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut head = [0u8; 24];
        f.read_exact(&mut head).map_err(|_| bad("too short to be a state file".into()))?;
        if &head[..8] != MAGIC {
            return Err(bad("not an rwkv-cli state file (wrong magic)".into()));
        }
        let word = |i: usize| u32::from_le_bytes(head[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
        if word(0) != VERSION as usize {
            return Err(bad(format!("state file version {} is not supported (expected {VERSION})", word(0))));
        }
        let (l, c, n) = (word(1), word(2), word(3));
        let d = self.dims;
        if (l, c, n) != (d.n_layer, d.c, d.head_size) {
            return Err(bad(format!(
                "state is for a model with {l} layers, width {c}, head size {n}; this model has {} layers, width {}, \
                 head size {}",
                d.n_layer, d.c, d.head_size
            )));
        }
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).map_err(|e| bad(e.to_string()))?;
        let (nv, nw) = (l * c, l * c * n);
        if rest.len() != (2 * nv + nw) * 4 {
            return Err(bad(format!("state data is {} bytes, expected {}", rest.len(), (2 * nv + nw) * 4)));
        }
        let floats: Vec<f32> = bytemuck::pod_collect_to_vec(&rest);
        self.write(
            gpu,
            &StateSnapshot {
                shift_att: floats[..nv].to_vec(),
                shift_ffn: floats[nv..2 * nv].to_vec(),
                wkv: floats[2 * nv..].to_vec(),
            },
        )
    }
}
