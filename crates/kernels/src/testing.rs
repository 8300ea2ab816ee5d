#![allow(dead_code)]
//! Helpers shared by the kernels' GPU-vs-reference tests: shared devices, guarded output
//! buffers that catch out-of-bounds writes, a small seeded RNG, and named tolerances.

use std::sync::OnceLock;

use gpu_core::{BufferRange, ContextOptions, Gpu, GpuBuffer, LimitsPolicy};
use proptest::test_runner::{Config, TestCaseError};

fn open(limits: LimitsPolicy, disabled: gpu_core::wgpu::Features) -> Gpu {
    Gpu::new(&ContextOptions { limits, disabled_features: disabled, ..Default::default() })
        .expect("a GPU adapter (install mesa-vulkan-drivers)")
}

/// The shared device with the *max* limits policy and every feature the adapter has.
pub fn gpu() -> &'static Gpu {
    static G: OnceLock<Gpu> = OnceLock::new();
    G.get_or_init(|| open(LimitsPolicy::Max, gpu_core::wgpu::Features::empty()))
}

/// A device with WebGPU's default limits (8 storage buffers, 128 MiB bindings).
pub fn gpu_default_limits() -> &'static Gpu {
    static G: OnceLock<Gpu> = OnceLock::new();
    G.get_or_init(|| open(LimitsPolicy::Default, gpu_core::wgpu::Features::empty()))
}

/// A device without subgroups, to run the plain variants where the adapter has subgroups.
pub fn gpu_without_subgroups() -> &'static Gpu {
    static G: OnceLock<Gpu> = OnceLock::new();
    G.get_or_init(|| {
        open(LimitsPolicy::Max, gpu_core::wgpu::Features::SUBGROUP | gpu_core::wgpu::Features::SUBGROUP_BARRIER)
    })
}

pub use test_data::Requirement;

/// Says visibly that a test variant was skipped because the adapter lacks a feature (`item`);
/// fails instead where `RWKV_REQUIRE` lists it (see the `test-data` crate).
pub fn skip(item: Requirement, test: &str, why: &str) {
    test_data::skip(item, test, why);
}

/// Proptest settings for GPU tests: few cases (each runs a kernel on a software GPU).
pub fn config() -> Config {
    Config { cases: 24, max_shrink_iters: 64, failure_persistence: None, ..Config::default() }
}

/// Row widths worth testing: 1, not a multiple of 4 or 32, larger than a workgroup, and some
/// real model sizes.
pub fn widths() -> impl proptest::strategy::Strategy<Value = usize> {
    proptest::prop_oneof![
        proptest::strategy::Just(1usize),
        proptest::strategy::Just(7),
        proptest::strategy::Just(33),
        proptest::strategy::Just(64),
        proptest::strategy::Just(257),
        proptest::strategy::Just(768),
        proptest::strategy::Just(1000),
        proptest::strategy::Just(2560),
        2usize..300,
    ]
}

/// Both row modes of the stateful kernels.
pub fn row_modes() -> impl proptest::strategy::Strategy<Value = crate::RowMode> {
    proptest::prop_oneof![
        proptest::strategy::Just(crate::RowMode::Sequence),
        proptest::strategy::Just(crate::RowMode::Independent)
    ]
}

/// Row counts every stateful kernel is checked with in both row modes: one row, and odd counts
/// that fill no workgroup or vector evenly.
pub const ODD_ROWS: [usize; 4] = [1, 3, 7, 33];

/// Whether two outputs are the same bits (NaNs included), naming the first difference.
pub fn assert_bitwise(what: &str, got: &[f32], want: &[f32]) -> Result<(), TestCaseError> {
    if got.len() != want.len() {
        return Err(TestCaseError::fail(format!("{what}: {} outputs, expected {}", got.len(), want.len())));
    }
    match got.iter().zip(want).position(|(g, w)| g.to_bits() != w.to_bits()) {
        Some(i) => {
            Err(TestCaseError::fail(format!("{what}: at {i} got {} want {} (not bitwise equal)", got[i], want[i])))
        }
        None => Ok(()),
    }
}

pub fn upload(gpu: &Gpu, data: &[f32]) -> GpuBuffer {
    gpu.buffer_from("test input", data).unwrap()
}

/// Words after each output that must keep their sentinel value.
pub const GUARD_WORDS: usize = 64;
const SENTINEL: u32 = 0x7fc0_dead;

/// An output buffer followed by a guard region filled with a sentinel. The kernel is bound to
/// the whole buffer, so a write past the logical end lands in the guard and is caught.
pub struct Guarded {
    pub buffer: GpuBuffer,
    pub len: usize,
}

impl Guarded {
    pub fn new(gpu: &Gpu, len: usize) -> Self {
        let mut init = vec![0u32; len + GUARD_WORDS];
        init[len..].fill(SENTINEL);
        Guarded { buffer: gpu.buffer_from("guarded output", &init).unwrap(), len }
    }
    /// Pre-fills the logical part (for kernels that read-modify-write their output).
    pub fn with_contents(gpu: &Gpu, data: &[f32]) -> Self {
        let g = Self::new(gpu, data.len());
        gpu.write(&g.buffer, 0, bytemuck::cast_slice(data));
        g
    }
    pub fn range(&self) -> BufferRange<'_> {
        self.buffer.all()
    }
    /// Reads the logical part back, panicking if the guard was touched.
    pub fn read(&self, gpu: &Gpu) -> Vec<f32> {
        let words: Vec<u32> = gpu.read_as(&self.buffer).unwrap();
        let bad: Vec<usize> = (self.len..self.len + GUARD_WORDS).filter(|&i| words[i] != SENTINEL).collect();
        assert!(
            bad.is_empty(),
            "out-of-bounds write: guard words {:?} after {} outputs were overwritten",
            bad,
            self.len
        );
        words[..self.len].iter().map(|&w| f32::from_bits(w)).collect()
    }
    pub fn read_u32(&self, gpu: &Gpu) -> Vec<u32> {
        self.read(gpu).iter().map(|v| v.to_bits()).collect()
    }
}

/// Allowed difference between GPU and reference: `|got - want| <= abs + rel * |want|`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
}

impl Tolerance {
    /// Element-wise f32 arithmetic: only rounding.
    pub const F32_EXACTISH: Tolerance = Tolerance { abs: 1e-6, rel: 1e-6 };
    /// f32 reductions over up to a few thousand terms in a different order.
    pub const F32_REDUCTION: Tolerance = Tolerance { abs: 1e-4, rel: 1e-4 };
    /// Dot products of length up to ~10k with f32 accumulation (F32, F16 or Q8_0 weights,
    /// compared with a reference on the same dequantized weights).
    pub const DOT: Tolerance = Tolerance { abs: 2e-4, rel: 2e-4 };
    /// Softmax probabilities: exp on the GPU plus an f32 sum over up to 65536 terms; small
    /// probabilities are compared relatively (abs 1e-7 stays below 1/65536).
    pub const SOFTMAX: Tolerance = Tolerance { abs: 1e-7, rel: 2e-4 };
    /// Transcendentals (exp, tanh, sigmoid) on the GPU.
    pub const TRANSCENDENTAL: Tolerance = Tolerance { abs: 1e-5, rel: 1e-5 };
    /// The RWKV-7 time-mix core (state and gated output) against its f64 reference: f32
    /// recurrences over up to 17 tokens of 64-term dot products, then a GroupNorm that divides
    /// by the head's standard deviation (which can amplify absolute errors). Measured: about
    /// 1e-6 relative; 2e-7 fails.
    pub const TIME_MIX: Tolerance = Tolerance { abs: 2e-5, rel: 2e-5 };
    /// Tensor-core products with inputs rounded to f16 (relative 2^-11 each; Q8_0 weights are
    /// also rounded once to f16) and f32 accumulation, on outputs near 1: the rounding errors
    /// add up to about 3e-4 (one sigma) per output for unit inputs and 1/sqrt(K) weights, so
    /// the largest of a few thousand outputs reaches about 1.5e-3. Checked against a CPU model
    /// of the rounding in matmul_coop's tests.
    pub const COOP_F16_INPUTS: Tolerance = Tolerance { abs: 4e-3, rel: 4e-3 };
}

/// Compares element-wise; NaN and infinity in the output are always errors.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tolerance) -> Result<(), TestCaseError> {
    if got.len() != want.len() {
        return Err(TestCaseError::fail(format!("{what}: {} outputs, expected {}", got.len(), want.len())));
    }
    let mut worst = (0usize, 0.0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !g.is_finite() {
            return Err(TestCaseError::fail(format!("{what}: non-finite output {g} at {i} (reference {w})")));
        }
        let err = (g - w).abs();
        let allowed = tol.abs + tol.rel * w.abs();
        if err > allowed && err - allowed > worst.1 {
            worst = (i, err - allowed);
        }
    }
    if worst.1 > 0.0 {
        let i = worst.0;
        return Err(TestCaseError::fail(format!(
            "{what}: at {i} got {} want {} (|diff| {} over tolerance {:?})",
            got[i],
            want[i],
            (got[i] - want[i]).abs(),
            tol
        )));
    }
    Ok(())
}

/// A small deterministic RNG (splitmix64) for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}
