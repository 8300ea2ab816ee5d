//! GPU time of the projections at RWKV-7 2.9B shapes (C = 2560, F = 10240, V = 65536), measured
//! with GPU timestamps (criterion's `iter_custom`): matvec (decode, reported as weight bytes per
//! second) and matmul (prefill, reported as tokens per second of the chunk). Several copies of
//! each weight are rotated so that repeated runs do not measure the L2 cache.
//!
//! matmul_coop (tensor cores, T = 512 and 2048) is reported in FLOP/s (2 T rows K per run);
//! adapters without cooperative matrices skip it visibly.
//!
//! `cargo bench -p kernels --bench projections [-- FILTER]`; `-- matmul` runs the matmul groups
//! (every tile x T in {64, 512, 2048} x F16/Q8_0 x 4 shapes, about two minutes), `-- matmul_coop`
//! only the tensor-core group.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gpu_core::{ContextOptions, Gpu, GpuBuffer, Timer};
use kernels::formats::{self, WeightFormat};
use kernels::matmul::{Matmul, Tile};
use kernels::matmul_coop::{CoopPrecision, MatmulCoop};
use kernels::matvec::Matvec;
use kernels::packing;
use kernels::projection::Projection;

/// Rows x K of the decode projections of a 2.9B model.
const SHAPES: [(&str, u32, u32); 4] = [
    ("att 2560x2560", 2560, 2560),
    ("rkv 7680x2560", 7680, 2560),
    ("ffn_key 10240x2560", 10240, 2560),
    ("ffn_value 2560x10240", 2560, 10240),
];

/// Dispatches per submission (the timer's query set holds one timestamp per dispatch).
const BATCH: u64 = 512;

fn weight_copies(gpu: &Gpu, format: WeightFormat, rows: u32, k: u32) -> Vec<GpuBuffer> {
    let n = rows as usize * k as usize;
    let values: Vec<f32> = (0..n).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * 0.05).collect();
    let bytes = formats::encode(format, &values).unwrap();
    let words = packing::pack_matrix(format, &bytes, rows as usize, k as usize).unwrap();
    // Enough copies to exceed the largest L2 caches (50 MB on an H100) four times over.
    let copies = (256usize << 20).div_ceil(words.len() * 4).clamp(1, 64);
    (0..copies).map(|_| gpu.buffer_from("weight", &words).unwrap()).collect()
}

/// Total GPU time of `iters` runs of `record`, in batches of one submission each.
fn gpu_time(
    gpu: &Gpu,
    timer: &mut Timer,
    iters: u64,
    mut record: impl FnMut(&mut gpu_core::Recorder<'_>, u64),
) -> Duration {
    let mut total = 0.0;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(BATCH);
        let mut rec = gpu.recorder().with_timer(timer);
        for i in 0..n {
            record(&mut rec, done + i);
        }
        rec.submit();
        total += timer.read(gpu).unwrap().iter().map(|k| k.total_ns).sum::<f64>();
        done += n;
    }
    Duration::from_nanos(total as u64)
}

fn matvec(c: &mut Criterion) {
    let gpu = Gpu::new(&ContextOptions::default()).unwrap();
    let Some(mut timer) = Timer::new(&gpu, BATCH as u32 + 2) else {
        eprintln!("SKIPPED: the adapter has no timestamps inside passes");
        return;
    };
    let mut group = c.benchmark_group(format!("matvec {}", gpu.caps().adapter_name));
    for format in [WeightFormat::F16, WeightFormat::Q8_0] {
        for (name, rows, k) in SHAPES {
            let spec = Projection::new(format, rows, k);
            let kernel = Matvec::new(&gpu, &spec).unwrap();
            let weights = weight_copies(&gpu, format, rows, k);
            let x = gpu.buffer_from("x", &vec![0.5f32; k as usize]).unwrap();
            let y = gpu.buffer("y", rows as u64 * 4).unwrap();
            group.throughput(Throughput::Bytes(format.gpu_words(rows as usize * k as usize) as u64 * 4));
            group.bench_function(BenchmarkId::new(format.name(), name), |b| {
                b.iter_custom(|iters| {
                    gpu_time(&gpu, &mut timer, iters, |rec, i| {
                        let w = &weights[i as usize % weights.len()];
                        kernel.record(&gpu, rec, x.all(), &[w.all()], None, y.all()).unwrap();
                    })
                })
            });
        }
    }
    group.finish();
}

/// Token counts of the matmul groups: a short chunk, the old default prompt, a long chunk.
const MATMUL_TOKENS: [u32; 3] = [64, 512, 2048];

/// Every matmul tile at every token count, F16 and Q8_0, each shape of a 2.9B model; criterion
/// reports GFLOP/s as elements per second, and each benchmark also prints its TFLOP/s on stderr.
/// Run only these with the filter `matmul`.
fn matmul(c: &mut Criterion) {
    let gpu = Gpu::new(&ContextOptions::default()).unwrap();
    let Some(mut timer) = Timer::new(&gpu, BATCH as u32 + 2) else {
        return;
    };
    let max_t = *MATMUL_TOKENS.iter().max().unwrap();
    let max_k = SHAPES.iter().map(|s| s.2).max().unwrap();
    let max_rows = SHAPES.iter().map(|s| s.1).max().unwrap();
    let x = gpu.buffer_from("x", &vec![0.5f32; (max_t * max_k) as usize]).unwrap();
    let y = gpu.buffer("y", (max_t * max_rows) as u64 * 4).unwrap();
    for format in [WeightFormat::F16, WeightFormat::Q8_0] {
        for (name, rows, k) in SHAPES {
            let spec = Projection::new(format, rows, k);
            let kernel = Matmul::new(&gpu, &spec).unwrap();
            let weights = weight_copies(&gpu, format, rows, k);
            for t in MATMUL_TOKENS {
                let mut group = c.benchmark_group(format!("matmul T={t} {}", gpu.caps().adapter_name));
                group
                    .sample_size(10)
                    .warm_up_time(Duration::from_millis(100))
                    .measurement_time(Duration::from_millis(400));
                let flop = 2 * t as u64 * rows as u64 * k as u64;
                group.throughput(Throughput::Elements(flop));
                let auto = kernel.tile_for(t);
                for tile in Tile::ALL {
                    let id = format!(
                        "{} {}{} {name}",
                        format.name(),
                        tile.name(),
                        if tile == auto { " (auto)" } else { "" }
                    );
                    let (mut ns, mut runs) = (0u128, 0u64);
                    group.bench_function(BenchmarkId::from_parameter(&id), |b| {
                        b.iter_custom(|iters| {
                            let d = gpu_time(&gpu, &mut timer, iters, |rec, i| {
                                let w = &weights[i as usize % weights.len()];
                                let (xr, yr) = (x.range(0, (t * k) as u64 * 4), y.range(0, (t * rows) as u64 * 4));
                                kernel.record_tile(&gpu, rec, tile, t, xr, &[w.all()], None, yr).unwrap();
                            });
                            ns += d.as_nanos();
                            runs += iters;
                            d
                        })
                    });
                    if ns > 0 {
                        let us = ns as f64 / runs as f64 / 1e3;
                        eprintln!("matmul T={t} {id}: {us:.1} us, {:.2} TFLOP/s", flop as f64 / us / 1e6);
                    }
                }
                group.finish();
            }
        }
    }
}

fn matmul_coop(c: &mut Criterion) {
    let gpu = Gpu::new(&ContextOptions::default()).unwrap();
    if let Err(e) = MatmulCoop::device_supports(&gpu) {
        eprintln!("SKIPPED matmul_coop on {}: {e}", gpu.caps().adapter_name);
        return;
    }
    let Some(mut timer) = Timer::new(&gpu, BATCH as u32 + 2) else {
        eprintln!("SKIPPED matmul_coop: the adapter has no timestamps inside passes");
        return;
    };
    for t in [512u32, 2048] {
        let mut group = c.benchmark_group(format!("matmul_coop T={t} {}", gpu.caps().adapter_name));
        for format in [WeightFormat::F16, WeightFormat::Q8_0] {
            for (name, rows, k) in SHAPES {
                let spec = Projection::new(format, rows, k);
                let weights = weight_copies(&gpu, format, rows, k);
                let x = gpu.buffer_from("x", &vec![0.5f32; (t * k) as usize]).unwrap();
                let y = gpu.buffer("y", (t * rows) as u64 * 4).unwrap();
                group.throughput(Throughput::Elements(2 * t as u64 * rows as u64 * k as u64));
                for precision in [CoopPrecision::Half, CoopPrecision::Split] {
                    let kernel = MatmulCoop::new(&gpu, &spec, precision).unwrap();
                    let id = format!("{} {precision:?}", format.name());
                    group.bench_function(BenchmarkId::new(id, name), |b| {
                        b.iter_custom(|iters| {
                            gpu_time(&gpu, &mut timer, iters, |rec, i| {
                                let w = &weights[i as usize % weights.len()];
                                kernel.record(&gpu, rec, t, x.all(), &[w.all()], None, y.all()).unwrap();
                            })
                        })
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    targets = matvec, matmul, matmul_coop
}
criterion_main!(benches);
