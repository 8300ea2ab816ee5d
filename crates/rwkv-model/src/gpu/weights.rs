//! The model's weights on the GPU, in the layouts the kernels want.

use gpu_core::{BufferRange, Gpu, GpuBuffer};

use kernels::formats::{self, WeightFormat};
use kernels::matvec::Prologue;
use kernels::packing::Packing;
use kernels::projection::Activation;
use kernels::time_mix::{transpose_lora_b, LoraRanks};

use crate::gpu::jobs::run_jobs;
use crate::gpu::linear::{Linear, Part, PrefillCoop};
use crate::gpu::upload::upload_packed;
use crate::names::blk;
use crate::{HParams, ModelError, ModelFile};

/// Rows of a layer's vector pack, each C floats. The first eight are the time-mix core's
/// `params` in `kernels::time_mix::ParamRow` order; rows 5..8 double as the LoRA stage-2 bias.
#[derive(Clone, Copy, Debug)]
pub enum VecRow {
    KK = 0,
    KA = 1,
    RK = 2,
    LnxWeight = 3,
    LnxBias = 4,
    W0 = 5,
    A0 = 6,
    V0 = 7,
    Ln1Weight = 8,
    Ln1Bias = 9,
    Ln2Weight = 10,
    Ln2Bias = 11,
    /// Six rows: r, w, k, v, a, g.
    AttMix = 12,
    FfnMix = 18,
}

const VEC_ROWS: usize = 19;

const VEC_TENSORS: [(VecRow, &str); 14] = [
    (VecRow::KK, "time_mix_k_k.weight"),
    (VecRow::KA, "time_mix_k_a.weight"),
    (VecRow::RK, "time_mix_r_k.weight"),
    (VecRow::LnxWeight, "time_mix_ln.weight"),
    (VecRow::LnxBias, "time_mix_ln.bias"),
    (VecRow::W0, "time_mix_w0.weight"),
    (VecRow::A0, "time_mix_a0.weight"),
    (VecRow::V0, "time_mix_v0.weight"),
    (VecRow::Ln1Weight, "attn_norm.weight"),
    (VecRow::Ln1Bias, "attn_norm.bias"),
    (VecRow::Ln2Weight, "attn_norm_2.weight"),
    (VecRow::Ln2Bias, "attn_norm_2.bias"),
    (VecRow::AttMix, "time_mix_lerp_fused.weight"),
    (VecRow::FfnMix, "channel_mix_lerp_k.weight"),
];

/// One layer's weights.
pub struct LayerWeights {
    /// [VEC_ROWS, C] f32.
    pub vecs: GpuBuffer,
    /// r, k, v from the shifted input (segments at 0, 2C, 3C).
    pub rkv: Linear,
    /// LoRA stage 1: w (tanh), a, [v], g (sigmoid) from the shifted input.
    pub lora1: Linear,
    /// LoRA stage 2 in F32: z = w0 + .., α = σ(a0 + ..), [vgate = σ(v0 + ..)], g.
    pub lora2: Linear,
    /// The same four matrices transposed ([D, C] each), for the fused one-token time-mix kernel.
    pub lora_bt: GpuBuffer,
    pub wo: Linear,
    pub fk: Linear,
    pub fv: Linear,
}

impl LayerWeights {
    pub fn vec(&self, c: usize, row: VecRow, rows: usize) -> BufferRange<'_> {
        let b = (c * 4) as u64;
        self.vecs.range(row as u64 * b, rows as u64 * b)
    }
}

/// Every weight of the model.
pub struct Weights {
    /// The embedding table, in [`Weights::table_format`].
    pub table: GpuBuffer,
    /// [ln0 weight, ln0 bias, ln_out weight, ln_out bias], each C floats.
    pub norms: GpuBuffer,
    pub layers: Vec<LayerWeights>,
    pub head: Linear,
}

/// What one upload job made.
enum Uploaded {
    Buffer(GpuBuffer),
    Layer(Box<LayerWeights>),
    Linear(Linear),
}

/// What the loader reports while it uploads.
#[derive(Clone, Copy, Debug)]
pub struct LoadProgress {
    /// File bytes of the tensors uploaded so far (reported as each job finishes).
    pub done_bytes: u64,
    /// File bytes of all the model's tensors.
    pub total_bytes: u64,
}

fn vector(file: &ModelFile, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
    let v = file.tensor_f32(name)?;
    if v.len() != len {
        return Err(ModelError::WrongShape {
            path: file.path().to_path_buf(),
            tensor: name.to_string(),
            expected: format!("{len} values"),
            found: format!("{} values", v.len()),
        });
    }
    Ok(v)
}

impl Weights {
    /// Bytes of every weight buffer.
    pub fn bytes(&self) -> u64 {
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                l.vecs.size()
                    + l.lora_bt.size()
                    + [&l.rkv, &l.lora1, &l.lora2, &l.wo, &l.fk, &l.fv].iter().map(|x| x.bytes()).sum::<u64>()
            })
            .sum();
        self.table.size() + self.norms.size() + self.head.bytes() + layers
    }

    /// Packs and uploads every weight, on up to `threads` threads (the embedding table, the
    /// norms, each layer and the head are independent jobs), reporting progress on this thread.
    /// `coop`: whether prefill may use tensor cores.
    pub fn upload(
        gpu: &Gpu,
        file: &ModelFile,
        threads: usize,
        coop: PrefillCoop,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Weights, ModelError> {
        let hp = file.hparams();
        let c = hp.n_embd;
        let emb = file.tensor("token_embd.weight")?;
        let table_format = Self::table_format(file)?;
        file.gguf().prefetch();

        // Jobs in the order a serial load takes them (which decides the error reported first).
        let (table_job, norms_job, head_job) = (0, 1, hp.n_layer + 2);
        let layer_job = |l: usize| l + 2;
        let job_bytes = Self::job_bytes(file, hp.n_layer);
        let total_bytes: u64 = job_bytes.iter().sum();
        // The two largest first, then the layers.
        let mut order = vec![table_job, head_job, norms_job];
        order.extend((0..hp.n_layer).map(layer_job));

        let mut done_bytes = 0u64;
        let mut finished = |job: usize| {
            done_bytes += job_bytes[job];
            progress(LoadProgress { done_bytes, total_bytes });
        };
        let run = |job: usize| -> Result<Uploaded, ModelError> {
            Ok(match job {
                j if j == table_job => {
                    let matrix = kernels::packing::MatrixBytes { bytes: emb.bytes, rows: hp.vocab, k: c };
                    Uploaded::Buffer(upload_packed(gpu, "token_embd", &Packing::new(table_format, &[matrix])?)?)
                }
                j if j == norms_job => {
                    let mut norms = Vec::with_capacity(4 * c);
                    for name in
                        ["token_embd_norm.weight", "token_embd_norm.bias", "output_norm.weight", "output_norm.bias"]
                    {
                        norms.extend(vector(file, name, c)?);
                    }
                    Uploaded::Buffer(gpu.buffer_from("norms", &norms)?)
                }
                j if j == head_job => Uploaded::Linear(Linear::new(
                    gpu,
                    "output",
                    &[Part::of(file.tensor("output.weight")?)?],
                    false,
                    None,
                    coop,
                )?),
                j => Uploaded::Layer(Box::new(Self::layer(gpu, file, hp, j - layer_job(0), coop)?)),
            })
        };
        let mut uploaded = run_jobs(hp.n_layer + 3, &order, threads, run, &mut finished)?.into_iter();
        let mut next = || uploaded.next().expect("one result per job");
        let (Uploaded::Buffer(table), Uploaded::Buffer(norms)) = (next(), next()) else {
            unreachable!("jobs 0 and 1 make buffers")
        };
        let layers = (0..hp.n_layer)
            .map(|_| match next() {
                Uploaded::Layer(layer) => *layer,
                _ => unreachable!("jobs 2.. make layers"),
            })
            .collect();
        let Uploaded::Linear(head) = next() else { unreachable!("the last job makes the head") };
        Ok(Weights { table, norms, layers, head })
    }

    /// The format the embedding table keeps on the GPU (the file's).
    pub fn table_format(file: &ModelFile) -> Result<WeightFormat, ModelError> {
        let emb = file.tensor("token_embd.weight")?;
        crate::tensors::weight_format(emb.dtype)
            .ok_or_else(|| ModelError::Unsupported { what: format!("token_embd.weight of type {}", emb.dtype.name()) })
    }

    /// Bytes of the file's tensors each upload job reads: the table, the norms, each layer, the
    /// head (for progress).
    fn job_bytes(file: &ModelFile, n_layer: usize) -> Vec<u64> {
        let mut bytes = vec![0u64; n_layer + 3];
        for t in file.gguf().tensor_infos() {
            let layer = t.name.strip_prefix("blk.").and_then(|rest| rest.split('.').next()?.parse::<usize>().ok());
            let job = match (t.name.as_str(), layer) {
                ("token_embd.weight", _) => 0,
                ("output.weight", _) => n_layer + 2,
                (_, Some(l)) if l < n_layer => l + 2,
                _ => 1,
            };
            bytes[job] += t.size;
        }
        bytes
    }

    fn layer(
        gpu: &Gpu,
        file: &ModelFile,
        hp: &HParams,
        l: usize,
        coop: PrefillCoop,
    ) -> Result<LayerWeights, ModelError> {
        let c = hp.n_embd;
        let cu = c as u32;
        let t = |s: &str| file.tensor(&blk(l, s));
        let mut vecs = vec![0f32; VEC_ROWS * c];
        for (row, name) in VEC_TENSORS {
            let len = if matches!(row, VecRow::AttMix) { 6 * c } else { c };
            let v = vector(file, &blk(l, name), len)?;
            vecs[row as usize * c..row as usize * c + len].copy_from_slice(&v);
        }
        let vecs = gpu.buffer_from(&format!("blk.{l}.vectors"), &vecs)?;
        let value = l > 0;

        // The one-token prologues: LayerNorm + lerps from the raw residual, rows of `vecs`.
        let att_prologue =
            Prologue::new(cu, hp.ln_eps, VecRow::Ln1Weight as u32, VecRow::Ln1Bias as u32, VecRow::AttMix as u32);
        let ffn_prologue =
            Prologue::new(cu, hp.ln_eps, VecRow::Ln2Weight as u32, VecRow::Ln2Bias as u32, VecRow::FfnMix as u32);
        let rkv = Linear::new(
            gpu,
            &format!("blk.{l}.rkv"),
            &[
                Part::of(t("time_mix_receptance.weight")?)?.input_at(0),
                Part::of(t("time_mix_key.weight")?)?.input_at(2 * cu),
                Part::of(t("time_mix_value.weight")?)?.input_at(3 * cu),
            ],
            false,
            Some(att_prologue),
            coop,
        )?;
        // Stage 1 reads the shifted inputs xw (block 1), xa (4), xv (3), xg (5).
        let mut stage1 = vec![
            Part::of(t("time_mix_w1.weight")?)?.input_at(cu).activation(Activation::Tanh),
            Part::of(t("time_mix_a1.weight")?)?.input_at(4 * cu),
        ];
        if value {
            stage1.push(Part::of(t("time_mix_v1.weight")?)?.input_at(3 * cu));
        }
        stage1.push(Part::of(t("time_mix_g1.weight")?)?.input_at(5 * cu).activation(Activation::Sigmoid));
        // A common format lets stage 1 be one dispatch; widen to F32 (lossless) where mixed.
        if !stage1.iter().all(|p| p.format == stage1[0].format) {
            stage1 = stage1.into_iter().map(Part::widened).collect::<Result<_, _>>()?;
        }
        // r/k/v writes the shift state; stage 1 reads the same (unchanged) half.
        let lora1 =
            Linear::new(gpu, &format!("blk.{l}.lora1"), &stage1, false, Some(att_prologue.write_shift(false)), coop)?;
        // Stage 2 in F32: its packed buffer is also the fused time-mix kernel's `lora_b`.
        let (dw, da, dv) = (hp.d_w as u32, hp.d_a as u32, hp.d_v as u32);
        let mut stage2 = vec![
            Part::f32_of(t("time_mix_w2.weight")?)?.input_at(0).with_bias(true),
            Part::f32_of(t("time_mix_a2.weight")?)?.input_at(dw).activation(Activation::Sigmoid).with_bias(true),
        ];
        let mut at = dw + da;
        if value {
            stage2.push(
                Part::f32_of(t("time_mix_v2.weight")?)?.input_at(at).activation(Activation::Sigmoid).with_bias(true),
            );
            at += dv;
        }
        stage2.push(Part::f32_of(t("time_mix_g2.weight")?)?.input_at(at));
        let lora2 = Linear::new(gpu, &format!("blk.{l}.lora2"), &stage2, false, None, coop)?;
        // The parts keep the file's bytes (widened while packing): widen them here too.
        let mut row_major: Vec<f32> = Vec::with_capacity(c * (hp.d_w + hp.d_a + hp.d_v + hp.d_g));
        for p in &stage2 {
            row_major.extend(formats::dequantize(p.stored, &p.bytes)?);
        }
        let ranks = LoraRanks { w: dw, a: da, v: if value { dv } else { 0 }, g: hp.d_g as u32 };
        let lora_bt = gpu.buffer_from(&format!("blk.{l}.lora_bt"), &transpose_lora_b(c, ranks, &row_major)?)?;

        Ok(LayerWeights {
            vecs,
            rkv,
            lora1,
            lora2,
            lora_bt,
            wo: Linear::new(gpu, &format!("blk.{l}.wo"), &[Part::of(t("time_mix_output.weight")?)?], true, None, coop)?,
            fk: Linear::new(
                gpu,
                &format!("blk.{l}.fk"),
                &[Part::of(t("channel_mix_key.weight")?)?.activation(Activation::ReluSq)],
                false,
                Some(ffn_prologue),
                coop,
            )?,
            fv: Linear::new(
                gpu,
                &format!("blk.{l}.fv"),
                &[Part::of(t("channel_mix_value.weight")?)?],
                true,
                None,
                coop,
            )?,
        })
    }
}
