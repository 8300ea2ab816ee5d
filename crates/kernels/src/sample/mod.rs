//! Sampling on the GPU with ChatRWKV's semantics (penalties, softmax, top-p, top-k,
//! temperature, draw, penalty bookkeeping), for R independent rows (sequences) at once: the CPU
//! writes nothing per token. See `sample.wgsl` for the exact definition.
//!
//! Bindings (group 0), one workgroup per row; every buffer holds R rows, row r's share at r
//! times the per-row size ([`Sample::row_bytes`]), and workgroup r touches only row r's shares:
//! - 0 `logits` [R, V] f32 read;
//! - 1 `counts` [R, V] f32 read_write: the decayed occurrence counts (zero at sequence start);
//! - 2 `seen` [R, ceil(V / 32)] u32 read_write: one bit per token seen so far (zero at start);
//! - 3 `scratch` [R, V] f32 read_write: working space;
//! - 4 `state` [R, STATE_WORDS] u32 read_write: seed (low, high word) and step counter
//!   ([`initial_state`]);
//! - 5 `out_token` [R] u32 read_write: each row's token (what the next step's embedding reads);
//! - 6 `params` [R] [`SampleParams`] read (96 bytes each: the settings and up to
//!   [`MAX_BANNED`] banned tokens, which are never sampled).
//!
//! A sequence joins row r with its rows of `counts` and `seen` zeroed, `initial_state(seed)` in
//! its row of `state` and its settings in `params[r]` (writes of [`Sample::row_bytes`] at their
//! offsets; nothing else of the other rows changes).
//!
//! Seven storage buffers: fits WebGPU's default limit of eight. Differences from ChatRWKV:
//! ties at the top-k cut are all kept (numpy keeps an arbitrary k of them); top_p >= 1 keeps
//! every token (numpy's float cumsum can fall short of 1.0 and then keeps only the top one);
//! every sampled token counts 1 (ChatRWKV's `generate` counts whitespace and digit tokens 0).

mod reference;
#[cfg(test)]
mod rows_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use gpu_core::{workgroups_1d, Binding, BufferRange, Gpu, KernelSource, Needs, Pipeline, Recorder};

pub use reference::{decide, draw_uniform, sample, update, Outcome};

pub const KERNEL: KernelSource = KernelSource {
    name: "sample",
    wgsl: include_str!(concat!(env!("OUT_DIR"), "/sample.wgsl")),
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "logits"),
        Binding::read_write(0, 1, "counts"),
        Binding::read_write(0, 2, "seen"),
        Binding::read_write(0, 3, "scratch"),
        Binding::read_write(0, 4, "state"),
        Binding::read_write(0, 5, "out_token"),
        Binding::read(0, 6, "params"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// The most banned tokens a [`SampleParams`] holds.
pub const MAX_BANNED: usize = 16;

/// Sampling parameters of one row, laid out as the shader's `Params` (96 bytes). Build the banned
/// list with [`SampleParams::with_banned`]; check the whole with [`SampleParams::validate`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SampleParams {
    /// 0 = greedy (treated as 1 with top_p 0, as in ChatRWKV).
    pub temperature: f32,
    pub top_p: f32,
    /// 0 = off.
    pub top_k: u32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// Multiplies every count after each token.
    pub penalty_decay: f32,
    /// How many of `banned` are used.
    pub banned_count: u32,
    pub pad: u32,
    /// Tokens never sampled, in any mode (greedy included): the first `banned_count`.
    pub banned: [u32; MAX_BANNED],
}

impl SampleParams {
    /// The softmax as it is: temperature 1, no top-p or top-k, no penalties, nothing banned.
    pub const PLAIN: SampleParams = SampleParams {
        temperature: 1.0,
        top_p: 1.0,
        top_k: 0,
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        penalty_decay: 1.0,
        banned_count: 0,
        pad: 0,
        banned: [0; MAX_BANNED],
    };

    /// These settings with `tokens` banned (replacing any earlier list).
    pub fn with_banned(self, tokens: &[u32]) -> crate::Result<SampleParams> {
        if tokens.len() > MAX_BANNED {
            return Err(crate::KernelError::TooManyBanned { count: tokens.len(), max: MAX_BANNED });
        }
        let mut banned = [0; MAX_BANNED];
        banned[..tokens.len()].copy_from_slice(tokens);
        Ok(SampleParams { banned_count: tokens.len() as u32, banned, ..self })
    }

    /// The banned tokens.
    pub fn banned(&self) -> &[u32] {
        &self.banned[..(self.banned_count as usize).min(MAX_BANNED)]
    }

    /// Fails on values the kernel gives no meaning to, for a vocabulary of `v` tokens: negative
    /// or non-finite temperature, top_p outside [0, 1], non-finite penalties, a decay outside
    /// [0, 1], more than [`MAX_BANNED`] banned tokens, a banned token outside the vocabulary, or
    /// every token banned.
    pub fn validate(&self, v: u32) -> crate::Result<()> {
        let bad = |setting: &'static str, value: f32, expected: &'static str| {
            Err(crate::KernelError::SampleSetting { setting, value, expected })
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature", self.temperature, "a finite number >= 0 (0 = greedy)");
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad("top_p", self.top_p, "between 0 and 1");
        }
        for (setting, value) in
            [("presence_penalty", self.presence_penalty), ("frequency_penalty", self.frequency_penalty)]
        {
            if !value.is_finite() {
                return bad(setting, value, "a finite number");
            }
        }
        if !(0.0..=1.0).contains(&self.penalty_decay) {
            return bad("penalty_decay", self.penalty_decay, "between 0 and 1");
        }
        if self.banned_count as usize > MAX_BANNED {
            return Err(crate::KernelError::TooManyBanned { count: self.banned_count as usize, max: MAX_BANNED });
        }
        if let Some(&token) = self.banned().iter().find(|&&t| t >= v) {
            return Err(crate::KernelError::BannedOutOfVocabulary { token, vocab: v });
        }
        let mut distinct = self.banned().to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() as u64 >= v as u64 {
            return Err(crate::KernelError::EveryTokenBanned { vocab: v });
        }
        Ok(())
    }

    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

/// Words of one row's `state`.
pub const STATE_WORDS: usize = 3;

/// The `state` words of a row that starts a sequence with `seed` (to be written at row r's
/// offset, r times [`SampleRowBytes::state`]).
pub fn initial_state(seed: u64) -> [u32; STATE_WORDS] {
    [seed as u32, (seed >> 32) as u32, 0]
}

/// The buffers one sampling step binds (see the module documentation), each holding at least
/// the rows sampled.
#[derive(Clone, Copy, Debug)]
pub struct SampleBuffers<'a> {
    pub logits: BufferRange<'a>,
    pub counts: BufferRange<'a>,
    pub seen: BufferRange<'a>,
    pub scratch: BufferRange<'a>,
    pub state: BufferRange<'a>,
    pub out_token: BufferRange<'a>,
    pub params: BufferRange<'a>,
}

/// Bytes of one row's share of each buffer: row r's share starts at r times these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleRowBytes {
    pub logits: u64,
    pub counts: u64,
    pub seen: u64,
    pub scratch: u64,
    pub state: u64,
    pub out_token: u64,
    pub params: u64,
}

/// Sampling from a vocabulary of `v` tokens.
pub struct Sample {
    pipeline: Arc<Pipeline>,
    v: u32,
}

impl Sample {
    pub fn new(gpu: &Gpu, v: u32) -> crate::Result<Self> {
        crate::check_shape("sample", "V", v, v > 0 && v < 1 << 30)?;
        let wg = crate::workgroup_size(gpu, 1024);
        Ok(Sample { pipeline: gpu.pipeline(&KERNEL, &[("V", v as f64), ("WG", wg as f64)])?, v })
    }

    /// Bytes of one row's share of each buffer.
    pub fn row_bytes(&self) -> SampleRowBytes {
        let v = self.v as u64 * 4;
        SampleRowBytes {
            logits: v,
            counts: v,
            seen: (self.v as u64).div_ceil(32) * 4,
            scratch: v,
            state: STATE_WORDS as u64 * 4,
            out_token: 4,
            params: std::mem::size_of::<SampleParams>() as u64,
        }
    }

    /// Samples one token for each of `rows` rows (one dispatch, one workgroup per row).
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder<'_>, rows: u32, b: &SampleBuffers<'_>) -> crate::Result<()> {
        crate::check_shape("sample", "rows", rows, rows > 0)?;
        let per = self.row_bytes();
        let r = rows as u64;
        let mut ranges = Vec::with_capacity(7);
        for (name, range, row) in [
            ("logits", b.logits, per.logits),
            ("counts", b.counts, per.counts),
            ("seen", b.seen, per.seen),
            ("scratch", b.scratch, per.scratch),
            ("state", b.state, per.state),
            ("out_token", b.out_token, per.out_token),
            ("params", b.params, per.params),
        ] {
            crate::check_len("sample", name, range.size, r * row)?;
            ranges.push(crate::prefix(range, r * row));
        }
        let groups = gpu.bind_groups(&self.pipeline, &[&ranges[..]])?;
        rec.dispatch(
            &self.pipeline,
            &groups,
            workgroups_1d(rows, gpu.caps().limits.max_compute_workgroups_per_dimension),
        );
        Ok(())
    }
}
