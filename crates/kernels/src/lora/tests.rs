use super::*;
use crate::projection_testing as pt;
use crate::testing::{self, Rng};

/// One LoRA's matrices: GGUF bytes in their formats and dequantised values.
struct Pair {
    kind: LoraKind,
    rank: usize,
    a: (WeightFormat, Vec<u8>, Vec<f32>),
    b: (WeightFormat, Vec<u8>, Vec<f32>),
}

fn matrix(format: WeightFormat, n: usize, k: usize, rng: &mut Rng) -> (WeightFormat, Vec<u8>, Vec<f32>) {
    let bytes = formats::encode(format, &rng.vec(n, 1.0 / (k as f32).sqrt())).unwrap();
    let values = formats::dequantize(format, &bytes).unwrap();
    (format, bytes, values)
}

/// Runs all LoRAs of `spec` for `t` tokens (matvec when `t` is None) and compares each output
/// block with the per-LoRA reference. `formats[kind]` = (first, second) matrix formats.
fn check(gpu: &Gpu, spec: &LoraSpec, t: Option<u32>, formats: [(WeightFormat, WeightFormat); 4], seed: u64) {
    let c = spec.c as usize;
    let tokens = t.unwrap_or(1) as usize;
    let mut rng = Rng::new(seed);
    let pairs: Vec<Pair> = spec
        .kinds()
        .iter()
        .map(|&(kind, rank)| {
            let (fa, fb) = formats[kind as usize];
            let rank = rank as usize;
            Pair { kind, rank, a: matrix(fa, rank * c, c, &mut rng), b: matrix(fb, c * rank, rank, &mut rng) }
        })
        .collect();
    fn lm(p: &Pair, c: usize, first: bool) -> LoraMatrix<'_> {
        let (m, rows, k) = if first { (&p.a, p.rank, c) } else { (&p.b, c, p.rank) };
        LoraMatrix { format: m.0, bytes: &m.1, rows, k }
    }
    let (f1, w1) = pack(&pairs.iter().map(|p| lm(p, c, true)).collect::<Vec<_>>()).unwrap();
    let (f2, w2) = pack(&pairs.iter().map(|p| lm(p, c, false)).collect::<Vec<_>>()).unwrap();
    if pairs.iter().any(|p| p.a.0 != pairs[0].a.0) {
        assert_eq!(f1, WeightFormat::F32);
    }
    if pairs.iter().any(|p| p.b.0 != pairs[0].b.0) {
        assert_eq!(f2, WeightFormat::F32);
    }

    let x = rng.vec(6 * tokens * c, 1.0);
    let biased = pairs.iter().filter(|p| p.kind.has_bias()).count();
    let bias = rng.vec(biased * c, 0.5);
    let hidden_len = spec.hidden_len() as usize * tokens;
    let out_len = spec.output_blocks() as usize * tokens * c;

    let (bx, bw1, bw2, bb) = (
        pt::upload_padded(gpu, &x),
        gpu.buffer_from("stage 1", &w1).unwrap(),
        gpu.buffer_from("stage 2", &w2).unwrap(),
        testing::upload(gpu, &bias),
    );
    let hidden = gpu.buffer("hidden", (hidden_len.next_multiple_of(4) * 4) as u64).unwrap();
    let out = testing::Guarded::new(gpu, out_len);
    let bufs = LoraBuffers {
        x: bx.all(),
        stage1: bw1.all(),
        stage2: bw2.all(),
        bias: bb.all(),
        hidden: hidden.all(),
        out: out.range(),
    };
    let mut rec = gpu.recorder();
    match t {
        None => LoraDecode::new(gpu, spec, f1, f2).unwrap().record(gpu, &mut rec, &bufs).unwrap(),
        Some(t) => LoraPrefill::new(gpu, spec, f1, f2).unwrap().record(gpu, &mut rec, t, &bufs).unwrap(),
    }
    rec.submit();
    let got = out.read(gpu);

    let mut bias_at = 0;
    for p in &pairs {
        let block = spec.output_block(p.kind).unwrap() as usize;
        let b = p.kind.has_bias().then(|| &bias[bias_at..bias_at + c]);
        if b.is_some() {
            bias_at += c;
        }
        for tok in 0..tokens {
            let xin = &x[(p.kind.input_block() as usize * tokens + tok) * c..][..c];
            let want = reference::lora(p.kind, xin, &p.a.2, &p.b.2, b);
            let at = (block * tokens + tok) * c;
            pt::assert_matches(&format!("{:?} token {tok} of {spec:?} {t:?}", p.kind), &got[at..at + c], &want)
                .unwrap();
        }
    }
}

const F32: WeightFormat = WeightFormat::F32;
const F16: WeightFormat = WeightFormat::F16;
const Q8: WeightFormat = WeightFormat::Q8_0;

/// As a GGUF file stores them: w1/w2 F32, the others in `f`.
fn as_in_files(f: WeightFormat) -> [(WeightFormat, WeightFormat); 4] {
    [(F32, F32), (f, f), (f, f), (f, f)]
}

#[test]
fn real_ranks_at_2560() {
    let spec = LoraSpec { c: 2560, ranks: [96, 96, 64, 320], value: true };
    check(testing::gpu(), &spec, None, [(F16, F16); 4], 1);
    check(testing::gpu_without_subgroups(), &spec, None, [(Q8, Q8); 4], 2);
    check(testing::gpu_default_limits(), &spec, None, as_in_files(Q8), 3);
    check(testing::gpu(), &spec, Some(3), as_in_files(F16), 4);
}

#[test]
fn small_ranks_every_format_and_layer_zero() {
    for (i, value) in [true, false].into_iter().enumerate() {
        let spec = LoraSpec { c: 64, ranks: [32, 32, 32, 64], value };
        for (j, f) in [[(F32, F32); 4], [(F16, F16); 4], [(Q8, Q8); 4], as_in_files(Q8)].into_iter().enumerate() {
            let seed = (10 * i + j) as u64;
            check(testing::gpu(), &spec, None, f, seed);
            check(testing::gpu_without_subgroups(), &spec, None, f, seed);
            check(testing::gpu_default_limits(), &spec, Some(7), f, seed);
        }
        // Ranks and width that are not multiples of 4 (element loads).
        let odd = LoraSpec { c: 37, ranks: [5, 7, 3, 9], value };
        for t in [None, Some(1), Some(64), Some(100)] {
            check(testing::gpu(), &odd, t, [(F32, F32), (F16, F16), (F16, F32), (F32, F16)], 20 + i as u64);
        }
    }
}

#[test]
fn output_layout() {
    let spec = LoraSpec { c: 8, ranks: [1, 2, 3, 4], value: false };
    assert_eq!(spec.hidden_len(), 7);
    assert_eq!(spec.output_blocks(), 3);
    assert_eq!(spec.output_block(LoraKind::Gate), Some(2));
    assert_eq!(spec.output_block(LoraKind::Value), None);
    let s2 = spec.stage2(F32);
    assert_eq!(s2.bias_len(), 16);
    assert_eq!(s2.segments.iter().map(|s| s.x_offset).collect::<Vec<_>>(), vec![0, 1, 3]);
}
