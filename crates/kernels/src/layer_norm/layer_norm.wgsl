// LayerNorm over rows of C values: y = (x - mean) / sqrt(var + eps) * weight + bias
// (biased variance). One workgroup per row; rows = number of workgroups dispatched.

override C: u32;
override EPS: f32 = 1e-5;
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wid, nwg);
    let base = row * C;
    // Two-pass in registers: mean first, then the centred sum of squares (stable for large
    // offsets, unlike E[x^2] - E[x]^2).
    var s = 0.0;
    for (var i = lid; i < C; i += WG) {
        s += x[base + i];
    }
    partial[lid] = vec2<f32>(s, 0.0);
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    let mean = partial[0].x / f32(C);
    workgroupBarrier();
    var q = 0.0;
    for (var i = lid; i < C; i += WG) {
        let d = x[base + i] - mean;
        q += d * d;
    }
    partial[lid] = vec2<f32>(q, 0.0);
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(partial[0].x / f32(C) + EPS);
    for (var i = lid; i < C; i += WG) {
        y[base + i] = (x[base + i] - mean) * inv * weight[i] + bias[i];
    }
}
