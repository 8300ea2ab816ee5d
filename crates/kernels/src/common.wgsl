// Shared helpers, the start of every shader module build.rs composes (after the `enable` lines).
// Only constants and pure functions live here: no bindings, no workgroup variables.

// ---- weight formats -------------------------------------------------------------------
// F16 matrices are stored as raw IEEE half pairs in u32 words (element e at word e/2, low half
// for even e). Q8_0 matrices are repacked at load into one u32 buffer: first every quant
// (row-major, 4 signed bytes per word, little-endian), then the f16 block scales packed two per
// word (flat block b at word n_quant_words + b/2, low half for even b). A block is 32 values.

const Q8_BLOCK: u32 = 32u;

// Element e of an F16 matrix stored as u32 pairs.
fn f16_elem(word: u32, e: u32) -> f32 {
    let pair = unpack2x16float(word);
    return select(pair.x, pair.y, (e & 1u) == 1u);
}

// Four signed bytes of a Q8_0 quant word as floats. (Building the floats from the bytes with
// the 2^23 mantissa trick instead of int-to-float conversions measured 2% slower decode on an
// H200: docs/perf.md.)
fn q8_unpack(word: u32) -> vec4<f32> {
    return vec4<f32>(unpack4xI8(word));
}

// The scale of flat block b, given the word that holds it.
fn q8_scale(word: u32, b: u32) -> f32 {
    return f16_elem(word, b);
}

// ---- activations ----------------------------------------------------------------------
fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn relu_sq(x: f32) -> f32 {
    let r = max(x, 0.0);
    return r * r;
}

// RWKV-7 decay from the LoRA output z: w = exp(-0.606531 * sigmoid(z)), in f32.
fn rwkv7_decay(z: f32) -> f32 {
    return exp(-0.606531 * sigmoid(z));
}

// ---- dispatch geometry ------------------------------------------------------------------
// Flat workgroup index when a 1-D grid was split over x and y (gpu_core::workgroups_1d).
fn flat_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// ---- matrix kernels (matvec, matmul) ------------------------------------------------------
// Weight format ids (the DTYPE override; WeightFormat::shader_id).
const DTYPE_F32: u32 = 0u;
const DTYPE_F16: u32 = 1u;
const DTYPE_Q8_0: u32 = 2u;

// Epilogue activations (the SEG_ACTn overrides; projection::Activation).
const ACT_NONE: u32 = 0u;
const ACT_TANH: u32 = 1u;
const ACT_SIGMOID: u32 = 2u;
const ACT_RELU_SQ: u32 = 3u;

// tanh that never returns NaN: some drivers compute it through exp and overflow for large |x|
// (tanh(10) already rounds to 1 in f32).
fn tanh_safe(x: f32) -> f32 {
    return tanh(clamp(x, -10.0, 10.0));
}

fn activate(v: f32, act: u32) -> f32 {
    switch act {
        case ACT_TANH: { return tanh_safe(v); }
        case ACT_SIGMOID: { return sigmoid(v); }
        case ACT_RELU_SQ: { return relu_sq(v); }
        default: { return v; }
    }
}

// Dot product of 8 F16 weights (a vec4 of words) with 8 inputs.
fn dot_f16x8(wd: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>) -> f32 {
    let a = vec4<f32>(unpack2x16float(wd.x), unpack2x16float(wd.y));
    let b = vec4<f32>(unpack2x16float(wd.z), unpack2x16float(wd.w));
    return dot(a, x0) + dot(b, x1);
}

// Unscaled dot product of 16 Q8_0 quants (a vec4 of words) with 16 inputs.
fn dot_q8x16(wd: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> f32 {
    return dot(q8_unpack(wd.x), x0) + dot(q8_unpack(wd.y), x1) + dot(q8_unpack(wd.z), x2) + dot(q8_unpack(wd.w), x3);
}
