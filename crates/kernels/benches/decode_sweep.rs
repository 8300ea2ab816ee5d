//! A quick sweep of the decode kernels' launch geometries at RWKV-7 2.9B shapes (C = 2560,
//! F = 10240): every matvec split (threads per row group, rows per group, workgroup size) for
//! F16 and Q8_0 (or the formats `SWEEP_FORMATS` names), plain and with the LayerNorm +
//! token-shift prologue, and the fused time-mix kernel; then every weight format on one shape,
//! 7680 rows of K = 2560 (r/k/v of the 2.9B as one matrix), with its default geometry, plain and
//! with the prologue: GPU time, the weight bytes read per second and that bandwidth against
//! Q8_0's (issue 17's bar: 80%). GPU time per dispatch from timestamps, weights rotated through
//! enough copies to miss the L2 cache; one line per configuration, the default geometry marked
//! with `*`.
//!
//! `cargo bench -p kernels --bench decode_sweep [-- FILTER]` (FILTER: a substring of the line
//! label, e.g. `q8_0`, `prologue`, `time_mix`, `formats`: `-- formats` runs only the format
//! comparison, `-- magic` only the chunked formats' lines with bytes turned into floats through
//! the mantissa). `SWEEP_WIDTH=768` sweeps another model width (768 is the 0.1B shape, for the
//! software driver); `SWEEP_RUNS` changes the dispatches per line; `SWEEP_FORMATS=q4_k,q6_k`
//! sweeps the geometries of other formats.

use gpu_core::{ContextOptions, Gpu, GpuBuffer, Recorder, Timer};
use kernels::formats::{self, WeightFormat};
use kernels::matvec::{Geometry, Matvec, Prologue, PrologueMatvec};
use kernels::packing::{self, MatrixBytes};
use kernels::projection::{Activation, Projection, Segment};
use kernels::time_mix::{transpose_lora_b, LoraRanks, TimeMixLora, TimeMixShape};

/// The model width of the swept shapes (`SWEEP_WIDTH`, default the 2.9B's 2560).
fn width() -> u32 {
    std::env::var("SWEEP_WIDTH").ok().and_then(|v| v.parse().ok()).unwrap_or(2560)
}

/// Dispatches timed per configuration, one submission (`SWEEP_RUNS`, default 400).
fn runs() -> u32 {
    std::env::var("SWEEP_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(400)
}

/// The formats whose geometries are swept (`SWEEP_FORMATS`, ggml names; default F16 and Q8_0).
fn swept_formats() -> Vec<WeightFormat> {
    let Ok(names) = std::env::var("SWEEP_FORMATS") else {
        return vec![WeightFormat::F16, WeightFormat::Q8_0];
    };
    names
        .split(',')
        .map(|n| {
            WeightFormat::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(n.trim()))
                .unwrap_or_else(|| panic!("SWEEP_FORMATS: unknown format {n:?}"))
        })
        .collect()
}

fn weight_copies(gpu: &Gpu, spec: &Projection) -> Vec<GpuBuffer> {
    let mats: Vec<(u32, u32)> = spec.segments.iter().map(|s| (s.rows, s.k)).collect();
    let mut bytes = Vec::new();
    for &(rows, k) in &mats {
        let n = rows as usize * k as usize;
        let values: Vec<f32> = (0..n).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * 0.05).collect();
        bytes.push((formats::encode(spec.format, &values).unwrap(), rows as usize, k as usize));
    }
    let mb: Vec<MatrixBytes<'_>> =
        bytes.iter().map(|(b, rows, k)| MatrixBytes { bytes: b, rows: *rows, k: *k }).collect();
    let words = packing::pack_matrices(spec.format, &mb).unwrap();
    // Enough copies to exceed the largest L2 caches (50 MB on an H100) four times over.
    let copies = (256usize << 20).div_ceil(words.len() * 4).clamp(2, 64);
    (0..copies).map(|_| gpu.buffer_from("weight", &words).unwrap()).collect()
}

/// Mean GPU µs per dispatch of `RUNS` dispatches recorded by `record` in one submission.
fn time(gpu: &Gpu, timer: &mut Timer, mut record: impl FnMut(&mut Recorder<'_>, usize)) -> f64 {
    // One untimed warm-up submission.
    let mut rec = gpu.recorder();
    for i in 0..8 {
        record(&mut rec, i);
    }
    rec.submit();
    let mut rec = gpu.recorder().with_timer(timer);
    for i in 0..runs() as usize {
        record(&mut rec, i);
    }
    rec.submit();
    let times = timer.read(gpu).unwrap();
    let ns: f64 = times.iter().map(|k| k.total_ns).sum();
    let n: u32 = times.iter().map(|k| k.dispatches).sum();
    ns / n.max(1) as f64 / 1000.0
}

/// Keeps the GPU busy for about two seconds so that its clocks have ramped up before the first
/// measurement (an idle GPU measures 2-3x slower for a while).
fn warm_up(gpu: &Gpu) {
    let c = width();
    let spec = Projection::new(WeightFormat::F16, 4 * c, c);
    let mv = Matvec::new(gpu, &spec).unwrap();
    let w = weight_copies(gpu, &spec);
    let x = gpu.buffer_from("x", &vec![0.5f32; c as usize]).unwrap();
    let y = gpu.buffer("y", 4 * c as u64 * 4).unwrap();
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < 2.0 {
        let mut rec = gpu.recorder();
        for i in 0..500 {
            mv.record(gpu, &mut rec, x.all(), &[w[i % w.len()].all()], None, y.all()).unwrap();
        }
        rec.submit();
        gpu.wait().unwrap();
    }
}

fn geometries(gpu: &Gpu, spec: &Projection, auto: Geometry) -> Vec<Geometry> {
    let mut out = vec![auto];
    for tpr in [1, 2, 4, 8, 16, 32] {
        for rows in [1, 2, 4] {
            for workgroup in [32, 64, 128, 256] {
                let g = Geometry { threads_per_row: tpr, rows, workgroup, ..auto };
                if g != auto && g.validate(gpu, spec, "sweep").is_ok() {
                    out.push(g);
                }
            }
        }
    }
    out
}

fn label(g: &Geometry, auto: &Geometry) -> String {
    let star = if g == auto { "*" } else { " " };
    format!("tpr {:>2} rows {} wg {:>3} {star}", g.threads_per_row, g.rows, g.workgroup)
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |l: &str| filter.as_deref().is_none_or(|f| l.to_lowercase().contains(&f.to_lowercase()));
    // RWKV_SHADER_CHECKS=1: kernels with wgpu's runtime checks.
    let checks = std::env::var("RWKV_SHADER_CHECKS").is_ok_and(|v| v == "1");
    let gpu = Gpu::new(&ContextOptions { shader_runtime_checks: checks, ..Default::default() }).unwrap();
    let c = width();
    let Some(mut timer) = Timer::new(&gpu, runs() + 2) else {
        eprintln!("SKIPPED: the adapter has no timestamps inside passes");
        return;
    };
    println!(
        "decode sweep on {} ({} dispatches per line, width {c}, shader runtime checks: {checks})",
        gpu.caps().adapter_name,
        runs()
    );
    let shapes: [(String, Vec<Segment>, Activation, bool); 5] = [
        (format!("att_out {c}x{c}"), vec![Segment::new(c, c)], Activation::None, true),
        (
            format!("rkv 3x{c}x{c}"),
            vec![Segment::new(c, c), Segment::new(c, c).input_at(2 * c), Segment::new(c, c).input_at(3 * c)],
            Activation::None,
            false,
        ),
        (format!("ffn_key {}x{c}", 4 * c), vec![Segment::new(4 * c, c)], Activation::ReluSq, false),
        (format!("ffn_value {c}x{}", 4 * c), vec![Segment::new(c, 4 * c)], Activation::None, true),
        (format!("head 65536x{c}"), vec![Segment::new(65536, c)], Activation::None, false),
    ];
    let x = gpu.buffer_from("x", &vec![0.5f32; 6 * 4 * c as usize]).unwrap();
    warm_up(&gpu);
    let y = gpu.buffer("y", 4 * c as u64 * 4 * 4).unwrap();
    let vecs = gpu.buffer_from("vecs", &vec![0.25f32; 19 * c as usize]).unwrap();
    let shift = gpu.buffer_from("shift", &vec![0.1f32; 2 * c as usize]).unwrap();
    for format in swept_formats() {
        for (name, segs, act, residual) in &shapes {
            let segs: Vec<Segment> = segs.iter().map(|s| s.activation(*act)).collect();
            let mut spec = Projection::segmented(format, segs);
            spec.residual = *residual;
            let bytes = format.gpu_words(spec.segments.iter().map(|s| (s.rows * s.k) as usize).sum()) as f64 * 4.0;
            let plain_label = format!("{} {name} matvec", format.name());
            // The prologue variant reads the [c] residual: only for K = c inputs (not ffn_value).
            let prologue_ok = spec.segments.iter().all(|s| s.k == c);
            let prologue_label = format!("{} {name} prologue", format.name());
            if !(wanted(&plain_label) || (prologue_ok && wanted(&prologue_label))) {
                continue;
            }
            let weights = weight_copies(&gpu, &spec);
            if wanted(&plain_label) {
                let auto = Matvec::new(&gpu, &spec).unwrap().geometry();
                for g in geometries(&gpu, &spec, auto) {
                    let mv = Matvec::with_geometry(&gpu, &spec, g).unwrap();
                    let us = time(&gpu, &mut timer, |rec, i| {
                        mv.record(&gpu, rec, x.all(), &[weights[i % weights.len()].all()], None, y.all()).unwrap()
                    });
                    println!("{plain_label:<44} {}  {us:8.2} us  {:6.2} TB/s", label(&g, &auto), bytes / us / 1e6);
                }
            }
            if prologue_ok && wanted(&prologue_label) {
                let p = Prologue::new(c, 1e-5, 8, 9, 12);
                let auto_g = PrologueMatvec::new(&gpu, &spec, p).unwrap().geometry();
                for g in geometries(&gpu, &spec, auto_g) {
                    let mv = PrologueMatvec::with_geometry(&gpu, &spec, p, g).unwrap();
                    let us = time(&gpu, &mut timer, |rec, i| {
                        let w = weights[i % weights.len()].all();
                        mv.record(&gpu, rec, (i % 2) as u32, x.all(), vecs.all(), shift.all(), &[w], None, y.all())
                            .unwrap()
                    });
                    let l = label(&g, &auto_g);
                    println!("{prologue_label:<44} {l}  {us:8.2} us  {:6.2} TB/s", bytes / us / 1e6);
                }
            }
        }
    }
    let tm_label = "f32 time_mix_lora 40x64 ranks 96/96/64/320";
    if wanted(tm_label) {
        let shape = TimeMixShape { heads: 40, head_size: 64, first_layer: false };
        let ranks = LoraRanks { w: 96, a: 96, v: 64, g: 320 };
        let tm = TimeMixLora::new(&gpu, shape, ranks).unwrap();
        let lora_b = vec![0.01f32; c as usize * ranks.total() as usize];
        let copies: Vec<GpuBuffer> = (0..16)
            .map(|_| gpu.buffer_from("lora_bt", &transpose_lora_b(c as usize, ranks, &lora_b).unwrap()).unwrap())
            .collect();
        let rkv = gpu.buffer_from("rkv", &vec![0.1f32; 3 * c as usize]).unwrap();
        let hidden = gpu.buffer_from("hidden", &vec![0.1f32; ranks.total() as usize]).unwrap();
        let params = gpu.buffer_from("params", &vec![0.1f32; 8 * c as usize]).unwrap();
        let v_first = gpu.buffer_from("v_first", &vec![0.1f32; c as usize]).unwrap();
        let state = gpu.buffer("state", c as u64 * 64 * 4).unwrap();
        let out = gpu.buffer("out", c as u64 * 4).unwrap();
        let us = time(&gpu, &mut timer, |rec, i| {
            let lb = copies[i % copies.len()].all();
            tm.record(&gpu, rec, 1, rkv.all(), hidden.all(), lb, params.all(), v_first.all(), state.all(), out.all())
                .unwrap()
        });
        println!("{tm_label:<44} {us:8.2} us");
    }
    formats(&gpu, &mut timer, &wanted, &x, &y, &vecs, &shift);
}

/// Every weight format on 7680 rows of K = C, default geometry, plain and with the prologue;
/// the chunked formats also with their bytes turned into floats through the mantissa
/// (`Geometry::magic_bytes`, lines `... magic`).
fn formats(
    gpu: &Gpu,
    timer: &mut Timer,
    wanted: &dyn Fn(&str) -> bool,
    x: &GpuBuffer,
    y: &GpuBuffer,
    vecs: &GpuBuffer,
    shift: &GpuBuffer,
) {
    let c = width();
    let rows = 3 * c;
    let chunked = |f: WeightFormat| f.block_elements() > 1 && f != WeightFormat::Q8_0;
    // (label, prologue, magic bytes) of a format's lines.
    let lines_of = |f: WeightFormat| -> Vec<(String, bool, bool)> {
        let name = |what: &str| format!("formats {} {rows}x{c} {what}", f.name());
        let mut v = vec![(name("matvec"), false, false), (name("prologue"), true, false)];
        if chunked(f) {
            v.extend([(name("matvec magic"), false, true), (name("prologue magic"), true, true)]);
        }
        v
    };
    if !WeightFormat::ALL.into_iter().any(|f| lines_of(f).iter().any(|l| wanted(&l.0))) {
        return;
    }
    // Weight bytes per µs of Q8_0, plain and prologue: the reference of the last column.
    let mut q8 = [None::<f64>; 2];
    // Q8_0 first (the reference), then the others in shader-id order.
    let order = WeightFormat::ALL.into_iter().filter(|&f| f != WeightFormat::Q8_0);
    for format in std::iter::once(WeightFormat::Q8_0).chain(order) {
        let lines = lines_of(format);
        if format != WeightFormat::Q8_0 && !lines.iter().any(|l| wanted(&l.0)) {
            continue;
        }
        let spec = Projection::new(format, rows, c);
        let bytes = format.gpu_words((rows * c) as usize) as f64 * 4.0;
        let weights = weight_copies(gpu, &spec);
        let p = Prologue::new(c, 1e-5, 8, 9, 12);
        for (label, prologue, magic_bytes) in &lines {
            let (us, g) = if *prologue {
                let auto = PrologueMatvec::new(gpu, &spec, p).unwrap().geometry();
                let mv = PrologueMatvec::with_geometry(gpu, &spec, p, Geometry { magic_bytes: *magic_bytes, ..auto })
                    .unwrap();
                let us = time(gpu, timer, |rec, n| {
                    let w = weights[n % weights.len()].all();
                    mv.record(gpu, rec, (n % 2) as u32, x.all(), vecs.all(), shift.all(), &[w], None, y.all()).unwrap()
                });
                (us, mv.geometry())
            } else {
                let auto = Matvec::new(gpu, &spec).unwrap().geometry();
                let mv = Matvec::with_geometry(gpu, &spec, Geometry { magic_bytes: *magic_bytes, ..auto }).unwrap();
                let us = time(gpu, timer, |rec, n| {
                    mv.record(gpu, rec, x.all(), &[weights[n % weights.len()].all()], None, y.all()).unwrap()
                });
                (us, mv.geometry())
            };
            let rate = bytes / us;
            if format == WeightFormat::Q8_0 {
                q8[*prologue as usize] = Some(rate);
            }
            if wanted(label) {
                let vs_q8 = q8[*prologue as usize]
                    .map_or(String::new(), |r| format!("{:5.0}% of Q8_0's bandwidth", 100.0 * rate / r));
                println!(
                    "{label:<44} {}  {us:8.2} us  {:6.2} TB/s  {:>6.2} MB  {vs_q8}",
                    label_of(&g),
                    rate / 1e6,
                    bytes / 1e6
                );
            }
        }
    }
}

fn label_of(g: &Geometry) -> String {
    format!("tpr {:>2} rows {} wg {:>3}  ", g.threads_per_row, g.rows, g.workgroup)
}
