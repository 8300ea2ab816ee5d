//! Recording one chunk of tokens through every layer: the one place where the model's dataflow
//! is written down (spec §3-4).

use gpu_core::{BufferRange, Gpu, Recorder};
use kernels::embedding::Embedding;
use kernels::formats::WeightFormat;
use kernels::layer_norm::LayerNorm;
use kernels::ln_shift::LnShift;
use kernels::sample::Sample;
use kernels::time_mix::{LoraRanks, TimeMix, TimeMixLora, TimeMixShape};
use kernels::token_shift::TokenShift;
use kernels::RowMode;

use crate::gpu::linear::KernelChoice;
use crate::gpu::scratch::Scratch;
use crate::gpu::state::State;
use crate::gpu::state_pool::StatePool;
use crate::gpu::weights::{LayerWeights, VecRow, Weights};
use crate::gpu::Path;
use crate::{HParams, ModelError};

/// The model's pipelines (created once at load).
pub struct Kernels {
    pub embedding: Embedding,
    pub layer_norm: LayerNorm,
    pub ln_shift_att: LnShift,
    pub ln_shift_ffn: LnShift,
    pub shift_att: TokenShift,
    pub shift_ffn: TokenShift,
    /// Index 0: layer 0 (writes v_first); index 1: the other layers.
    pub time_mix: [TimeMix; 2],
    pub time_mix_lora: [TimeMixLora; 2],
    pub sample: Sample,
}

impl Kernels {
    /// `table_format`: the embedding table's ([`Weights::table_format`]); nothing else depends
    /// on the weights, so this runs while they upload.
    pub fn new(gpu: &Gpu, hp: &HParams, table_format: WeightFormat) -> Result<Kernels, ModelError> {
        let (c, eps) = (hp.n_embd as u32, hp.ln_eps);
        let shape = |first_layer| TimeMixShape { heads: hp.n_head as u32, head_size: hp.head_size as u32, first_layer };
        let ranks = |first_layer: bool| LoraRanks {
            w: hp.d_w as u32,
            a: hp.d_a as u32,
            v: if first_layer { 0 } else { hp.d_v as u32 },
            g: hp.d_g as u32,
        };
        Ok(Kernels {
            embedding: Embedding::new(gpu, table_format, hp.vocab as u32, c, eps)?,
            layer_norm: LayerNorm::new(gpu, c, eps)?,
            ln_shift_att: LnShift::new(gpu, c, 6, eps)?,
            ln_shift_ffn: LnShift::new(gpu, c, 1, eps)?,
            shift_att: TokenShift::new(gpu, c, 6)?,
            shift_ffn: TokenShift::new(gpu, c, 1)?,
            time_mix: [TimeMix::new(gpu, shape(true))?, TimeMix::new(gpu, shape(false))?],
            time_mix_lora: [
                TimeMixLora::new(gpu, shape(true), ranks(true))?,
                TimeMixLora::new(gpu, shape(false), ranks(false))?,
            ],
            sample: Sample::new(gpu, hp.vocab as u32)?,
        })
    }
}

/// Whose recurrent state the rows of a recording advance.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// T consecutive tokens of one sequence.
    Sequence(&'a State),
    /// One token of each of T sequences: row t advances slot t of the pool.
    Independent(&'a StatePool),
}

impl Rows<'_> {
    fn mode(&self) -> RowMode {
        match self {
            Rows::Sequence(_) => RowMode::Sequence,
            Rows::Independent(_) => RowMode::Independent,
        }
    }

    /// The ln1 shift state of `layer` for `t` rows (the current half of a sequence's).
    fn shift_att(&self, layer: usize, t: u32) -> BufferRange<'_> {
        match self {
            Rows::Sequence(s) => s.shift_att(layer),
            Rows::Independent(p) => p.shift_att(layer, t),
        }
    }

    fn shift_ffn(&self, layer: usize, t: u32) -> BufferRange<'_> {
        match self {
            Rows::Sequence(s) => s.shift_ffn(layer),
            Rows::Independent(p) => p.shift_ffn(layer, t),
        }
    }

    fn wkv(&self, layer: usize, t: u32) -> BufferRange<'_> {
        match self {
            Rows::Sequence(s) => s.wkv(layer),
            Rows::Independent(p) => p.wkv(layer, t),
        }
    }

    /// How the projections pick their kernel: by token count for a sequence; for independent
    /// rows one kernel whatever their number, so that a row's result never depends on how many
    /// others run beside it.
    fn kernel_choice(&self) -> KernelChoice {
        match self {
            Rows::Sequence(_) => KernelChoice::ByTokens,
            Rows::Independent(_) => KernelChoice::SameForAnyCount,
        }
    }
}

/// Everything a chunk recording needs.
pub struct Ctx<'a> {
    pub gpu: &'a Gpu,
    pub hp: &'a HParams,
    pub weights: &'a Weights,
    pub kernels: &'a Kernels,
    pub scratch: &'a Scratch,
    pub path: Path,
}

impl Weights {
    /// Whether every layer can run the one-token prologue matvecs.
    pub fn prologue_ready(&self) -> bool {
        self.layers.iter().all(|w| w.rkv.has_prologue() && w.lora1.has_prologue() && w.fk.has_prologue())
    }
}

impl Ctx<'_> {
    fn norm(&self, i: u64) -> BufferRange<'_> {
        let b = self.hp.n_embd as u64 * 4;
        self.weights.norms.range(i * b, b)
    }

    /// Whether a chunk of `t` tokens of one sequence runs the one-token prologues: on the fused
    /// path, LayerNorm and the lerps run in the matvec prologues, which write the new shift
    /// vectors into the other halves of the state, and the state's parity flips.
    pub fn one_token_prologue(&self, t: u32) -> bool {
        self.path == Path::Fused && t == 1 && self.weights.prologue_ready()
    }

    /// Embeds the `t` token ids in `tokens` and runs every layer, leaving the residual stream
    /// of the rows in `scratch.x`.
    pub fn record_layers(
        &self,
        rec: &mut Recorder<'_>,
        t: u32,
        tokens: BufferRange<'_>,
        rows: Rows<'_>,
    ) -> Result<(), ModelError> {
        let s = self.scratch;
        let table = self.weights.table.all();
        self.kernels.embedding.record(self.gpu, rec, t, tokens, table, self.norm(0), self.norm(1), s.x.all())?;
        let prologue = match rows {
            Rows::Sequence(state) if self.one_token_prologue(t) => Some(state),
            _ => None,
        };
        for (l, w) in self.weights.layers.iter().enumerate() {
            self.time_mix(rec, t, l, w, rows, prologue)?;
            self.channel_mix(rec, t, l, w, rows, prologue)?;
        }
        if let Some(state) = prologue {
            state.flip();
        }
        Ok(())
    }

    /// LayerNorm plus token shift of the residual into `scratch.xs`, fused or not.
    #[allow(clippy::too_many_arguments)]
    fn norm_shift(
        &self,
        rec: &mut Recorder<'_>,
        t: u32,
        w: &LayerWeights,
        (ln_w, ln_b, mix, nmix): (VecRow, VecRow, VecRow, usize),
        (shift_state, mode): (BufferRange<'_>, RowMode),
        fused: &LnShift,
        plain: &TokenShift,
    ) -> Result<(), ModelError> {
        let (s, c) = (self.scratch, self.hp.n_embd);
        let (gw, gb, gm) = (w.vec(c, ln_w, 1), w.vec(c, ln_b, 1), w.vec(c, mix, nmix));
        if self.path == Path::Fused {
            fused.record(self.gpu, rec, mode, t, s.x.all(), gw, gb, gm, shift_state, s.xs.all())?;
        } else {
            self.kernels.layer_norm.record(self.gpu, rec, t, s.x.all(), gw, gb, s.xa.all())?;
            plain.record(self.gpu, rec, mode, t, s.xa.all(), gm, shift_state, s.xs.all())?;
        }
        Ok(())
    }

    fn time_mix(
        &self,
        rec: &mut Recorder<'_>,
        t: u32,
        l: usize,
        w: &LayerWeights,
        rows: Rows<'_>,
        prologue: Option<&State>,
    ) -> Result<(), ModelError> {
        let (s, c, k) = (self.scratch, self.hp.n_embd, self.kernels);
        let choice = rows.kernel_choice();
        if let Some(state) = prologue {
            // r/k/v writes the new shift vector; LoRA stage 1 reads the same, unchanged half.
            let (parity, shift) = (state.parity(), state.shift_att_pair(l));
            w.rkv.record_prologue(self.gpu, rec, parity, s.x.all(), w.vecs.all(), shift, s.rkv.all())?;
            w.lora1.record_prologue(self.gpu, rec, parity, s.x.all(), w.vecs.all(), shift, s.hidden.all())?;
        } else {
            let vecs = (VecRow::Ln1Weight, VecRow::Ln1Bias, VecRow::AttMix, 6);
            let shift = (rows.shift_att(l, t), rows.mode());
            self.norm_shift(rec, t, w, vecs, shift, &k.ln_shift_att, &k.shift_att)?;
            w.rkv.record(self.gpu, rec, t, choice, s.xs.all(), None, s.rkv.all())?;
            w.lora1.record(self.gpu, rec, t, choice, s.xs.all(), None, s.hidden.all())?;
        }
        let first = usize::from(l > 0);
        let params = w.vec(c, VecRow::KK, 8);
        match (self.path, t, rows) {
            // One token of one sequence: the LoRA second stage runs inside the time-mix kernel.
            (Path::Fused, 1, Rows::Sequence(state)) => k.time_mix_lora[first].record(
                self.gpu,
                rec,
                t,
                s.rkv.all(),
                s.hidden.all(),
                w.lora_bt.all(),
                params,
                s.v_first.all(),
                state.wkv(l),
                s.att.all(),
            )?,
            _ => {
                let w0 = Some(w.vec(c, VecRow::W0, 3));
                w.lora2.record(self.gpu, rec, t, choice, s.hidden.all(), w0, s.lora.all())?;
                k.time_mix[first].record(
                    self.gpu,
                    rec,
                    rows.mode(),
                    t,
                    s.rkv.all(),
                    s.lora.all(),
                    params,
                    s.v_first.all(),
                    rows.wkv(l, t),
                    s.att.all(),
                )?;
            }
        }
        w.wo.record(self.gpu, rec, t, choice, s.att.all(), None, s.x.all())
    }

    fn channel_mix(
        &self,
        rec: &mut Recorder<'_>,
        t: u32,
        l: usize,
        w: &LayerWeights,
        rows: Rows<'_>,
        prologue: Option<&State>,
    ) -> Result<(), ModelError> {
        let (s, k) = (self.scratch, self.kernels);
        let choice = rows.kernel_choice();
        if let Some(state) = prologue {
            let (parity, shift) = (state.parity(), state.shift_ffn_pair(l));
            w.fk.record_prologue(self.gpu, rec, parity, s.x.all(), w.vecs.all(), shift, s.ffn.all())?;
        } else {
            let vecs = (VecRow::Ln2Weight, VecRow::Ln2Bias, VecRow::FfnMix, 1);
            let shift = (rows.shift_ffn(l, t), rows.mode());
            self.norm_shift(rec, t, w, vecs, shift, &k.ln_shift_ffn, &k.shift_ffn)?;
            w.fk.record(self.gpu, rec, t, choice, s.xs.all(), None, s.ffn.all())?;
        }
        w.fv.record(self.gpu, rec, t, choice, s.ffn.all(), None, s.x.all())
    }

    /// ln_out and the head for row `row` of the chunk, into `scratch.logits`.
    pub fn record_head(&self, rec: &mut Recorder<'_>, row: u32) -> Result<(), ModelError> {
        let s = self.scratch;
        let b = self.hp.n_embd as u64 * 4;
        let x_row = s.x.range(row as u64 * b, b);
        self.kernels.layer_norm.record(self.gpu, rec, 1, x_row, self.norm(2), self.norm(3), s.xa.range(0, b))?;
        let xa = s.xa.range(0, b.next_multiple_of(16));
        self.weights.head.record(self.gpu, rec, 1, KernelChoice::ByTokens, xa, None, s.logits.all())
    }

    /// ln_out and the head for rows `0..t` of independent sequences, into `logits` (`[t, V]`).
    pub fn record_head_rows(&self, rec: &mut Recorder<'_>, t: u32, logits: BufferRange<'_>) -> Result<(), ModelError> {
        let s = self.scratch;
        let bytes = t as u64 * self.hp.n_embd as u64 * 4;
        let (x, xa) = (s.x.range(0, bytes), s.xa.range(0, bytes));
        self.kernels.layer_norm.record(self.gpu, rec, t, x, self.norm(2), self.norm(3), xa)?;
        let xa = s.xa.range(0, bytes.next_multiple_of(16));
        self.weights.head.record(self.gpu, rec, t, KernelChoice::SameForAnyCount, xa, None, logits)
    }
}
