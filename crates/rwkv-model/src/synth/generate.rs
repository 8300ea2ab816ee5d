//! Streams a synthetic model to disk tensor by tensor: each tensor is cut into row chunks that are
//! generated and encoded in parallel, a wave of `threads` chunks at a time, and written in order, so memory
//! stays at a few chunks whatever the model size.

use std::io::{self, Write};
use std::path::Path;

use gguf_file::{GgmlType, GgufWriter};
use kernels::formats::{self, WeightFormat};

use super::init::InitContext;
use super::metadata::set_metadata;
use super::plan::{plan_tensors, TensorPlan};
use super::rng::Rng;
use super::{SynthConfig, SynthError, SynthProgress, SynthSummary};

/// Writes the synthetic model described by `config` to `path`, calling `progress` after every written
/// piece (at least once per tensor).
pub fn write_synthetic_model(
    path: impl AsRef<Path>,
    config: &SynthConfig,
    progress: &mut dyn FnMut(&SynthProgress<'_>),
) -> Result<SynthSummary, SynthError> {
    config.shape.validate()?;
    let plans = plan_tensors(&config.shape, config.file_type);
    let params = plans.iter().map(TensorPlan::elements).sum();
    let mut writer = GgufWriter::new();
    set_metadata(&mut writer, config, params);
    for plan in &plans {
        writer.declare_tensor(&plan.name, plan.ggml_type, &plan.dims);
    }
    let threads = config.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let ctx = InitContext { width: config.shape.width, head_size: config.shape.head_size, layers: config.shape.layers };
    let bytes_total = plans.iter().map(TensorPlan::bytes).sum();
    let mut bytes_done = 0u64;
    let mut next = 0usize;
    let file_bytes = writer.write_file_with(path, |info, out| {
        let plan = plans.get(next).filter(|p| p.name == info.name).ok_or_else(|| {
            io::Error::other(format!("writer asked for tensor '{}' out of the planned order", info.name))
        })?;
        let report = |written: u64| {
            bytes_done += written;
            progress(&SynthProgress {
                tensor: &plan.name,
                tensor_index: next,
                tensor_count: plans.len(),
                bytes_done,
                bytes_total,
            });
        };
        write_tensor(plan, &ctx, config.seed, threads, out, report)?;
        next += 1;
        Ok(())
    })?;
    Ok(SynthSummary { tensors: plans.len(), params, file_bytes })
}

/// Generates, encodes and writes one tensor; `report` gets the byte count of each written wave.
fn write_tensor(
    plan: &TensorPlan,
    ctx: &InitContext,
    seed: u64,
    threads: usize,
    out: &mut dyn Write,
    mut report: impl FnMut(u64),
) -> io::Result<()> {
    let row_len = plan.row_len();
    let rows = (plan.elements() as usize) / row_len.max(1);
    let chunk_rows = plan.init.chunk_rows(row_len, rows);
    let chunks = rows.div_ceil(chunk_rows);
    let make_chunk = |chunk: usize| {
        let first_row = chunk * chunk_rows;
        let n_rows = chunk_rows.min(rows - first_row);
        let mut values = vec![0f32; n_rows * row_len];
        let mut rng = Rng::stream(seed, &plan.stream, chunk as u64);
        plan.init.fill(ctx, &mut rng, first_row * row_len, &mut values);
        encode(plan.ggml_type, &values)
    };
    for wave_start in (0..chunks).step_by(threads) {
        let wave = wave_start..(wave_start + threads).min(chunks);
        let encoded: Vec<Vec<u8>> = if wave.len() == 1 {
            vec![make_chunk(wave.start)?]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = wave.map(|chunk| s.spawn(move || make_chunk(chunk))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().map_err(|_| io::Error::other("generator thread panicked"))?)
                    .collect::<io::Result<Vec<_>>>()
            })?
        };
        let mut written = 0u64;
        for bytes in &encoded {
            out.write_all(bytes)?;
            written += bytes.len() as u64;
        }
        report(written);
    }
    Ok(())
}

/// Values in the tensor's storage format (Q8_0: ggml's reference quantizer; rows hold whole blocks).
fn encode(ggml_type: GgmlType, values: &[f32]) -> io::Result<Vec<u8>> {
    let format = crate::tensors::weight_format(ggml_type).unwrap_or(WeightFormat::F32);
    formats::encode(format, values).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}
