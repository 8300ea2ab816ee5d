use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::formats::WeightFormat;
use crate::ln_shift::LnShift;
use crate::projection::{Activation, Segment};
use crate::projection_testing::{self as pt, devices, TestWeight};
use crate::testing::{self, Guarded, Rng, Tolerance};

const EPS: f32 = 1e-5;

/// One token's inputs: the raw residual, the per-layer vectors and the shift state.
struct Token {
    x: Vec<f32>,
    vecs: Vec<f32>,
    shift: Vec<f32>,
    bias: Vec<f32>,
    y0: Vec<f32>,
}

impl Token {
    fn random(spec: &Projection, p: &Prologue, rng: &mut Rng) -> Self {
        let c = p.c as usize;
        let offset = rng.normal() * 10.0;
        let x = (0..c).map(|_| rng.normal() * 3.0 + offset).collect();
        let mut vecs = Vec::new();
        for r in 0..p.vecs_rows(spec) {
            let mut row: Vec<f32> = match r {
                r if r == p.ln_weight_row => rng.vec(c, 1.0),
                r if r == p.ln_bias_row => rng.vec(c, 0.5),
                _ => (0..c).map(|_| rng.uniform()).collect(),
            };
            vecs.append(&mut row);
        }
        let d = pt::data(spec, 1, rng);
        Token { x, vecs, shift: rng.vec(2 * c, 1.0), bias: d.bias, y0: d.y0 }
    }

    /// The CPU reference: the output and the shift state after.
    fn expected(&self, spec: &Projection, p: &Prologue, parity: usize, w: &TestWeight) -> (Vec<f32>, Vec<f32>) {
        let mut y = self.y0.clone();
        let shift = reference::prologue_projection(
            spec,
            p,
            parity,
            &self.x,
            &self.vecs,
            &self.shift,
            &w.values,
            &self.bias,
            &mut y,
        );
        (y, shift)
    }
}

/// Uploaded buffers of one matvec: x and vecs padded with NaN (reading past them poisons the
/// output), the shift state and the output guarded.
struct Bound {
    weights: Vec<gpu_core::GpuBuffer>,
    x: gpu_core::GpuBuffer,
    vecs: gpu_core::GpuBuffer,
    bias: gpu_core::GpuBuffer,
    shift: Guarded,
    y: Guarded,
}

impl Bound {
    fn new(gpu: &Gpu, spec: &Projection, w: &TestWeight, t: &Token) -> Self {
        Bound {
            weights: pt::upload_weight(gpu, spec, w),
            x: pt::upload_padded(gpu, &t.x),
            vecs: pt::upload_padded(gpu, &t.vecs),
            bias: testing::upload(gpu, &t.bias),
            shift: Guarded::with_contents(gpu, &t.shift),
            y: Guarded::with_contents(gpu, &t.y0),
        }
    }

    fn record(&self, gpu: &Gpu, rec: &mut gpu_core::Recorder<'_>, mv: &PrologueMatvec, parity: u32) {
        let ranges: Vec<BufferRange<'_>> = self.weights.iter().map(|b| b.all()).collect();
        mv.record(
            gpu,
            rec,
            parity,
            self.x.all(),
            self.vecs.all(),
            self.shift.range(),
            &ranges,
            Some(self.bias.all()),
            self.y.range(),
        )
        .unwrap();
    }
}

/// Runs one token on the GPU and compares the output and the shift state with the reference.
fn check(gpu: &Gpu, spec: &Projection, p: &Prologue, parity: u32, seed: u64) -> Result<(), TestCaseError> {
    check_with(gpu, spec, p, parity, seed, PrologueMatvec::new(gpu, spec, *p).unwrap())
}

fn check_with(
    gpu: &Gpu,
    spec: &Projection,
    p: &Prologue,
    parity: u32,
    seed: u64,
    mv: PrologueMatvec,
) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(seed);
    let w = pt::weight(spec, &mut rng);
    let t = Token::random(spec, p, &mut rng);
    let b = Bound::new(gpu, spec, &w, &t);
    let mut rec = gpu.recorder();
    b.record(gpu, &mut rec, &mv, parity);
    assert_eq!(rec.stats().dispatches as usize, spec.parts().len());
    rec.submit();
    let (want_y, want_shift) = t.expected(spec, p, parity as usize, &w);
    let what = format!("matvec prologue {spec:?} {p:?} parity {parity}");
    pt::assert_matches(&format!("{what}: y"), &b.y.read(gpu), &want_y)?;
    // Half 1 - parity holds LN(x) (LayerNorm tolerance); half parity is untouched (bit-exact).
    let c = p.c as usize;
    let shift = b.shift.read(gpu);
    let (read_half, write_half) = (parity as usize * c..(parity as usize + 1) * c, (1 - parity as usize) * c..);
    let untouched = shift[read_half.clone()].iter().zip(&t.shift[read_half]).all(|(a, b)| a.to_bits() == b.to_bits());
    prop_assert!(untouched, "{what}: the shift half read (parity) was modified");
    let written = &shift[write_half.start..write_half.start + c];
    testing::assert_close(
        &format!("{what}: shift half written"),
        written,
        &want_shift[write_half.start..write_half.start + c],
        Tolerance::F32_REDUCTION,
    )
}

/// A random prologue projection: any format, C from 1 to a few hundred (whole blocks for the
/// block formats), 1 to 4 segments reading any of six input blocks, vectors at any rows.
fn prologue_case() -> impl Strategy<Value = (Projection, Prologue)> {
    let format = proptest::sample::select(WeightFormat::ALL.to_vec());
    format.prop_flat_map(|f| {
        let c = match f.block_elements() {
            1 => prop_oneof![Just(1u32), Just(7), Just(64), Just(257), 2u32..140].boxed(),
            32 => (1u32..9).prop_map(|b| 32 * b).boxed(),
            block => (1u32..3).prop_map(move |b| block as u32 * b).boxed(),
        };
        let act = prop_oneof![
            Just(Activation::None),
            Just(Activation::Tanh),
            Just(Activation::Sigmoid),
            Just(Activation::ReluSq)
        ];
        let seg = (prop_oneof![Just(1u32), Just(33), 2u32..70, Just(300)], 0u32..6, act, any::<bool>());
        let rows = (0u32..10, 0u32..10, 0u32..10);
        (c, proptest::collection::vec(seg, 1..=4), any::<bool>(), rows, any::<bool>()).prop_map(
            move |(c, segs, residual, (lw, lb, mix), write)| {
                let segs = segs
                    .into_iter()
                    .map(|(rows, block, act, bias)| Segment { rows, k: c, x_offset: block * c, activation: act, bias })
                    .collect();
                let spec = Projection::segmented(f, segs);
                let spec = if residual { spec.residual() } else { spec };
                (spec, Prologue::new(c, EPS, lw, lb, mix).write_shift(write))
            },
        )
    })
}

proptest! {
    #![proptest_config(testing::config())]
    #[test]
    fn plain_prologue_matches_ln_shift_then_projection((spec, p) in prologue_case(), parity in 0u32..2,
                                                        seed in any::<u64>()) {
        let gpu = testing::gpu_without_subgroups();
        prop_assert!(!PrologueMatvec::new(gpu, &spec, p).unwrap().uses_subgroups());
        check(gpu, &spec, &p, parity, seed)?;
    }

    #[test]
    fn subgroup_prologue_matches_ln_shift_then_projection((spec, p) in prologue_case(), parity in 0u32..2,
                                                           seed in any::<u64>()) {
        let gpu = testing::gpu();
        if gpu.caps().subgroups.is_none() {
            let test = "matvec subgroup_prologue_matches_ln_shift_then_projection";
            testing::skip(testing::Requirement::Subgroups, test, "the adapter has no subgroups");
            return Ok(());
        }
        prop_assert!(PrologueMatvec::new(gpu, &spec, p).unwrap().uses_subgroups());
        check(gpu, &spec, &p, parity, seed)?;
    }
}

proptest! {
    #![proptest_config(testing::config())]
    /// Every split of the rows among threads gives the reference result (rows rounded up to a
    /// multiple of 4 so that groups of 1, 2 and 4 rows all fit).
    #[test]
    fn every_geometry_matches_ln_shift_then_projection(
        (spec, p) in prologue_case(),
        rows in prop_oneof![Just(1u32), Just(2), Just(4)],
        tpr_log in 0u32..=5,
        wg_log in 0u32..=2,
        subgroups in any::<bool>(),
        parity in 0u32..2,
        seed in any::<u64>(),
    ) {
        let mut spec = spec;
        for s in &mut spec.segments {
            s.rows = s.rows.next_multiple_of(4);
        }
        let gpu = if subgroups { testing::gpu() } else { testing::gpu_without_subgroups() };
        let auto = Geometry::of(gpu, &spec, 64);
        let cap = gpu.caps().subgroups.map_or(32, |sg| sg.min.min(32));
        let threads_per_row = (1u32 << tpr_log).min(cap);
        let g = Geometry { threads_per_row, rows, workgroup: (64u32 << wg_log).max(threads_per_row), ..auto };
        check_with(gpu, &spec, &p, parity, seed, PrologueMatvec::with_geometry(gpu, &spec, p, g).unwrap())?;
    }
}

/// The model's per-layer vector rows used below: ln1 weight and bias, then the six time-mix rows.
const LN_W: u32 = 0;
const LN_B: u32 = 1;
const MIX: u32 = 2;

/// r, k, v (input blocks 0, 2, 3) and the first stage of the four LoRAs (w, a, v, g from blocks
/// 1, 4, 3, 5) at C.
fn rkv_and_lora(format: WeightFormat, c: u32) -> [Projection; 2] {
    let rkv = Projection::segmented(
        format,
        vec![Segment::new(c, c), Segment::new(c, c).input_at(2 * c), Segment::new(c, c).input_at(3 * c)],
    );
    let lora = Projection::segmented(
        format,
        vec![
            Segment::new(64, c).input_at(c),
            Segment::new(64, c).input_at(4 * c),
            Segment::new(32, c).input_at(3 * c),
            Segment::new(128, c).input_at(5 * c).activation(Activation::Sigmoid),
        ],
    );
    [rkv, lora]
}

#[test]
fn real_model_shapes() {
    let c = 2560;
    for format in WeightFormat::ALL {
        for (i, spec) in rkv_and_lora(format, c).iter().enumerate() {
            // Each shape once per format, on a different device each time; the formats not
            // tested everywhere the LoRA stage only (4 segments, 288 rows).
            if !pt::tested_everywhere(format) && i == 0 {
                continue;
            }
            let (name, gpu) = devices()[(i + format.shader_id() as usize) % 3];
            let p = Prologue::new(c, EPS, LN_W, LN_B, MIX).write_shift(i == 0);
            check(gpu, spec, &p, (i as u32 + format.shader_id()) % 2, 40 + i as u64)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn tiny_shapes_on_every_device() {
    for format in WeightFormat::ALL {
        for (name, gpu) in pt::devices_for(format) {
            let c = format.block_elements() as u32;
            for spec in [
                Projection::new(format, 1, c),
                Projection::new(format, 33, c).with_bias().residual().activation(Activation::ReluSq),
            ] {
                for parity in 0..2 {
                    check(gpu, &spec, &Prologue::new(c, EPS, 1, 0, 2), parity, 3)
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            }
        }
    }
}

#[test]
fn row_blocks_write_the_state_once() {
    // An artificial binding limit splits 100 rows into three row blocks: three dispatches.
    for (name, gpu) in devices() {
        let (format, rows, c) = (WeightFormat::F16, 100u32, 64u32);
        let limit = format.gpu_words(c as usize) as u64 * 4 * 34 + 48;
        let blocks = crate::formats::row_blocks(format, rows as usize, c as usize, limit).unwrap();
        let spec = Projection::new(format, rows, c).split(blocks.iter().map(|&b| b as u32).collect());
        check(gpu, &spec, &Prologue::new(c, EPS, 0, 1, 2), 1, 9).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Two tokens with alternating parity, each with a state-writing matvec (r, k, v) and a second
/// one sharing its input (the LoRAs), equal two tokens through ln_shift then the plain matvec.
fn two_tokens(gpu: &Gpu, format: WeightFormat, c: u32, seed: u64) {
    let specs = rkv_and_lora(format, c);
    let mut rng = Rng::new(seed);
    let weights: Vec<TestWeight> = specs.iter().map(|s| pt::weight(s, &mut rng)).collect();
    let p = Prologue::new(c, EPS, LN_W, LN_B, MIX);
    let prologues = [p, p.write_shift(false)];
    let first = Token::random(&specs[1], &p, &mut rng); // vecs: ln_w, ln_b, six mixes
    let x2: Vec<f32> = (0..c).map(|_| rng.normal() * 2.0 - 1.0).collect();
    let vecs = first.vecs.clone();
    let cu = c as usize;
    let (ln_w, ln_b, mix) = (&vecs[..cu], &vecs[cu..2 * cu], &vecs[2 * cu..8 * cu]);

    // Prologue path: the shift state lives in one [2, C] buffer; y buffers are overwritten.
    let mvs: Vec<PrologueMatvec> =
        specs.iter().zip(&prologues).map(|(s, p)| PrologueMatvec::new(gpu, s, *p).unwrap()).collect();
    let wbufs: Vec<Vec<gpu_core::GpuBuffer>> =
        specs.iter().zip(&weights).map(|(s, w)| pt::upload_weight(gpu, s, w)).collect();
    let vb = pt::upload_padded(gpu, &vecs);
    let mut shift0 = first.shift.clone();
    shift0[cu..].fill(f32::NAN); // half 1 is written before it is read
    let shift = Guarded::with_contents(gpu, &shift0);
    // ln_shift path: state [C] = half 0 of the prologue's state at the start.
    let ln = LnShift::new(gpu, c, 6, EPS).unwrap();
    let plain: Vec<Matvec> = specs.iter().map(|s| Matvec::new(gpu, s).unwrap()).collect();
    let lnw = testing::upload(gpu, ln_w);
    let lnb = testing::upload(gpu, ln_b);
    let mu = testing::upload(gpu, mix);
    let state = Guarded::with_contents(gpu, &first.shift[..cu]);
    let mixed = gpu.buffer("mixed input", 6 * c as u64 * 4).unwrap();
    let mut want_ref = first.shift[..cu].to_vec();
    for (token, x) in [&first.x, &x2].into_iter().enumerate() {
        let parity = token as u32 % 2;
        let xb = pt::upload_padded(gpu, x);
        let ys: Vec<Guarded> = specs.iter().map(|s| Guarded::new(gpu, s.rows() as usize)).collect();
        let yp: Vec<Guarded> = specs.iter().map(|s| Guarded::new(gpu, s.rows() as usize)).collect();
        let mut rec = gpu.recorder();
        for ((mv, wb), y) in mvs.iter().zip(&wbufs).zip(&ys) {
            let ranges: Vec<BufferRange<'_>> = wb.iter().map(|b| b.all()).collect();
            mv.record(gpu, &mut rec, parity, xb.all(), vb.all(), shift.range(), &ranges, None, y.range()).unwrap();
        }
        ln.record(
            gpu,
            &mut rec,
            crate::RowMode::Sequence,
            1,
            xb.all(),
            lnw.all(),
            lnb.all(),
            mu.all(),
            state.range(),
            mixed.all(),
        )
        .unwrap();
        for ((mv, wb), y) in plain.iter().zip(&wbufs).zip(&yp) {
            let ranges: Vec<BufferRange<'_>> = wb.iter().map(|b| b.all()).collect();
            mv.record(gpu, &mut rec, mixed.all(), &ranges, None, y.range()).unwrap();
        }
        rec.submit();
        // The CPU reference of ln_shift then the projection.
        let input = crate::ln_shift::ln_shift(x, ln_w, ln_b, EPS, mix, &mut want_ref);
        for (i, spec) in specs.iter().enumerate() {
            let what = format!("{format:?} token {token} {}", ["rkv", "lora"][i]);
            let got = ys[i].read(gpu);
            pt::assert_matches(&format!("{what} vs ln_shift + matvec"), &got, &yp[i].read(gpu)).unwrap();
            let mut want = vec![0.0; spec.rows() as usize];
            reference::projection(spec, 1, &input, &weights[i].values, &[], &mut want);
            pt::assert_matches(&format!("{what} vs reference"), &got, &want).unwrap();
        }
        // The half just written holds what ln_shift keeps as its state.
        let half = (1 - parity as usize) * cu;
        let s = shift.read(gpu);
        testing::assert_close(
            "shift vs ln_shift state",
            &s[half..half + cu],
            &state.read(gpu),
            Tolerance::F32_REDUCTION,
        )
        .unwrap();
        testing::assert_close("shift vs reference", &s[half..half + cu], &want_ref, Tolerance::F32_REDUCTION).unwrap();
    }
}

#[test]
fn two_tokens_with_alternating_parity_equal_ln_shift() {
    // Small C on every device and format, then C = 2560 once.
    for (i, format) in WeightFormat::ALL.into_iter().enumerate() {
        let (name, gpu) = devices()[i % 3];
        eprintln!("two tokens: {name} {format:?}");
        two_tokens(gpu, format, pt::whole_blocks(format, 96), i as u64);
    }
    two_tokens(testing::gpu(), WeightFormat::Q8_0, 2560, 77);
}

#[test]
fn bad_shapes_and_bindings_are_errors() {
    let gpu = testing::gpu_default_limits();
    let f32 = WeightFormat::F32;
    let p = Prologue::new(8, EPS, 0, 1, 2);
    // Row length other than C; input not a whole block; zero C.
    assert!(PrologueMatvec::new(gpu, &Projection::new(f32, 4, 12), p).is_err());
    assert!(PrologueMatvec::new(gpu, &Projection::segmented(f32, vec![Segment::new(4, 8).input_at(4)]), p).is_err());
    assert!(PrologueMatvec::new(gpu, &Projection::new(f32, 4, 8), Prologue { c: 0, ..p }).is_err());
    // The prepared input does not fit WebGPU's default 16 KiB of workgroup memory.
    let wide = 8192;
    assert!(PrologueMatvec::new(gpu, &Projection::new(f32, 4, wide), Prologue { c: wide, ..p }).is_err());

    let spec = Projection::segmented(f32, vec![Segment::new(8, 8).input_at(8)]).with_bias();
    let mv = PrologueMatvec::new(gpu, &spec, p).unwrap();
    assert_eq!(p.vecs_rows(&spec), 4);
    let buf = |n: usize| gpu.buffer("test", n as u64 * 4).unwrap();
    let (x, vecs, shift, w, b, y, small) = (buf(8), buf(32), buf(16), buf(64), buf(8), buf(8), buf(4));
    let mut rec = gpu.recorder();
    let ok = |rec: &mut gpu_core::Recorder<'_>,
              parity,
              x: &gpu_core::GpuBuffer,
              v: &gpu_core::GpuBuffer,
              s: &gpu_core::GpuBuffer| {
        mv.record(gpu, rec, parity, x.all(), v.all(), s.all(), &[w.all()], Some(b.all()), y.all())
    };
    assert!(ok(&mut rec, 0, &x, &vecs, &shift).is_ok());
    assert!(ok(&mut rec, 2, &x, &vecs, &shift).is_err());
    assert!(ok(&mut rec, 1, &small, &vecs, &shift).is_err());
    assert!(ok(&mut rec, 1, &x, &buf(24), &shift).is_err());
    assert!(ok(&mut rec, 1, &x, &vecs, &buf(12)).is_err());
    assert!(mv.record(gpu, &mut rec, 0, x.all(), vecs.all(), shift.all(), &[w.all()], None, y.all()).is_err());
    assert!(mv
        .record(gpu, &mut rec, 0, x.all(), vecs.all(), shift.all(), &[small.all()], Some(b.all()), y.all())
        .is_err());
    assert!(mv
        .record(gpu, &mut rec, 0, x.all(), vecs.all(), shift.all(), &[w.all()], Some(b.all()), small.all())
        .is_err());
    rec.submit();
}
