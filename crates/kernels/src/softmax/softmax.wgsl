// Softmax over rows of V values in f32, numerically stable: y = exp(x - max) / sum(exp(x - max)).
// One workgroup per row; rows = arrayLength(x) / V.

override V: u32;
override WG: u32 = 256u; // a power of two

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn workgroup_max(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            partial[lid] = max(partial[lid], partial[lid + step]);
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

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
    let row = flat_workgroup(wid, nwg);
    if (row >= arrayLength(&x) / V) {
        return;
    }
    let base = row * V;
    var m = -3.40282347e38;
    for (var i = lid; i < V; i += WG) {
        m = max(m, x[base + i]);
    }
    m = workgroup_max(lid, m);
    var s = 0.0;
    for (var i = lid; i < V; i += WG) {
        s += exp(x[base + i] - m);
    }
    let inv = 1.0 / workgroup_sum(lid, s);
    for (var i = lid; i < V; i += WG) {
        y[base + i] = exp(x[base + i] - m) * inv;
    }
}
