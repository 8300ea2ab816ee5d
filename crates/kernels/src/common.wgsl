// Shared helpers, the start of every shader module build.rs composes (after the `enable` lines).
// Only constants and pure functions live here: no bindings, no workgroup variables.

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

// ---- matrix kernels (matvec, matmul, matmul_coop) -------------------------------------------
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
