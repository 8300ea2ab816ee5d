// GroupNorm per head (RWKV-7 ln_x): rows of C = H * N values; each head's N values are
// normalised on their own, y = (x - mean) / sqrt(var + EPS) * weight + bias (biased variance),
// with weight and bias over all C channels. One workgroup per (row, head), groups = rows * H
// with rows = arrayLength(x) / C.

override C: u32;
override N: u32;
override EPS: f32 = 64e-5;
override WG: u32 = 64u; // a power of two

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = flat_workgroup(wid, nwg);
    let heads = C / N;
    if (g >= arrayLength(&x) / C * heads) {
        return;
    }
    let base = g * N;
    let channel0 = (g % heads) * N;
    var s = 0.0;
    for (var i = lid; i < N; i += WG) {
        s += x[base + i];
    }
    let mean = workgroup_sum(lid, s) / f32(N);
    var q = 0.0;
    for (var i = lid; i < N; i += WG) {
        let d = x[base + i] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(workgroup_sum(lid, q) / f32(N) + EPS);
    for (var i = lid; i < N; i += WG) {
        y[base + i] = (x[base + i] - mean) * inv * weight[channel0 + i] + bias[channel0 + i];
    }
}
