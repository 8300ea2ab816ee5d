//! What the gpu-core tests share.

use gpu_core::{Binding, KernelSource, Needs};

/// x[i] = 3·x[i] + 1 (wrapping), over the whole binding.
pub const TIMES_THREE_PLUS_ONE: KernelSource = KernelSource {
    name: "test_times_three_plus_one",
    wgsl: r#"
@group(0) @binding(0) var<storage, read_write> x: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < arrayLength(&x)) { x[gid.x] = x[gid.x] * 3u + 1u; }
}
"#,
    entry: "main",
    bindings: &[Binding::read_write(0, 0, "x")],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

/// What one dispatch of [`TIMES_THREE_PLUS_ONE`] does to a value.
pub fn times_three_plus_one(v: u32) -> u32 {
    v.wrapping_mul(3).wrapping_add(1)
}
