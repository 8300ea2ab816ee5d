//! `rwkv-cli synth`: writes a synthetic RWKV-7 GGUF (random weights shaped like a trained model's
//! initialisation) of an official size or any explicit shape, for tests and benchmarks.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use rwkv_model::synth::{write_synthetic_model, LoraRanks, ModelShape, SynthConfig, SynthType};

#[derive(ClapArgs)]
pub struct Args {
    /// Official size: 0.1b, 0.4b, 1.5b, 2.9b or 7.2b (the flags below override parts of it).
    #[arg(long)]
    pub size: Option<String>,
    /// Storage type. f32, f16: as llama.cpp's converter writes them. bf16, q8_0, q4_0, q4_1, q5_0, q5_1,
    /// q2_k, q3_k_m, q4_k_m, q5_k_m, q6_k, iq4_nl, iq4_xs: what llama-quantize writes for that file type
    /// from the f32 file (output matrix Q6_K in the mixes). q3_k, q4_k, q5_k, pure-TYPE: every quantizable
    /// matrix in that type (llama-quantize --pure).
    #[arg(long = "type", default_value = "f16", value_parser = parse_type)]
    pub file_type: SynthType,
    /// Output GGUF file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Random seed; the same seed gives the same weights for every type.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Embedding width C (a multiple of the head size); the FFN width and LoRA ranks default from it.
    #[arg(long)]
    pub width: Option<usize>,
    /// FFN width (default 4 × width).
    #[arg(long)]
    pub ffn: Option<usize>,
    /// LoRA ranks decay,iclr,value,gate (default: the official formulas).
    #[arg(long, value_delimiter = ',', num_args = 1)]
    pub ranks: Option<Vec<usize>>,
    /// Head size (default 64, as in every official model).
    #[arg(long)]
    pub head_size: Option<usize>,
    /// Generator threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn parse_type(s: &str) -> Result<SynthType, String> {
    s.parse().map_err(|e| format!("{e}"))
}

impl Args {
    /// The official size (if any) with every explicit flag applied on top.
    fn shape(&self) -> Result<ModelShape> {
        let mut shape = match (&self.size, self.layers, self.width) {
            (Some(size), _, width) => {
                let official = ModelShape::official(size)?;
                match width {
                    Some(w) => ModelShape::with_defaults(official.layers, w),
                    None => official,
                }
            }
            (None, Some(layers), Some(width)) => ModelShape::with_defaults(layers, width),
            (None, _, _) => anyhow::bail!("give --size, or --layers and --width"),
        };
        if let Some(layers) = self.layers {
            shape.layers = layers;
        }
        if let Some(ffn) = self.ffn {
            shape.ffn = ffn;
        }
        if let Some(head_size) = self.head_size {
            shape.head_size = head_size;
        }
        if let Some(r) = &self.ranks {
            let &[decay, iclr, value, gate] = r.as_slice() else {
                anyhow::bail!("--ranks takes four numbers: decay,iclr,value,gate (got {})", r.len());
            };
            shape.ranks = LoraRanks { decay, iclr, value, gate };
        }
        shape.validate()?;
        Ok(shape)
    }
}

pub fn run(args: Args) -> Result<()> {
    let shape = args.shape()?;
    let config = SynthConfig { shape, file_type: args.file_type, seed: args.seed, threads: args.threads };
    let r = shape.ranks;
    eprintln!(
        "synthesizing RWKV-7 {}: {} layers, width {}, FFN {}, head size {}, ranks w/a/v/g {}/{}/{}/{}, seed {}",
        args.file_type,
        shape.layers,
        shape.width,
        shape.ffn,
        shape.head_size,
        r.decay,
        r.iclr,
        r.value,
        r.gate,
        args.seed
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}")
            .context("progress bar template")?,
    );
    let start = Instant::now();
    let summary = write_synthetic_model(&args.output, &config, &mut |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(format!("[{}/{}] {}", p.tensor_index + 1, p.tensor_count, p.tensor));
    })
    .with_context(|| format!("writing {}", args.output.display()))?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {}: {} tensors, {} weights, {} in {:.1} s",
        args.output.display(),
        summary.tensors,
        summary.params,
        HumanBytes(summary.file_bytes),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
