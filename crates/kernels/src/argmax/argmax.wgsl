// Argmax over rows of V values: out[row] = the index of the largest value; ties go to the
// lowest index and NaN never wins (a row of only NaN gives 0xffffffff, an id the embedding
// turns into a NaN row). One workgroup per row; rows = arrayLength(out).

override V: u32;
override WG: u32 = 256u; // a power of two

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;

const NONE: u32 = 0xffffffffu;

// Whether candidate (v, i) beats the current best (bv, bi). A NaN candidate never does.
fn beats(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wid, nwg);
    if (row >= arrayLength(&out)) {
        return;
    }
    let base = row * V;
    var bv = -3.40282347e38;
    var bi = NONE;
    // The first non-NaN value (v == v) is taken whatever it is (-inf included); later ones
    // replace it only when strictly greater, so equal values keep the lowest index.
    for (var i = lid; i < V; i += WG) {
        let v = x[base + i];
        if (beats(v, i, bv, bi) || (bi == NONE && v == v)) {
            bv = v;
            bi = i;
        }
    }
    best_value[lid] = bv;
    best_index[lid] = bi;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            let ov = best_value[lid + step];
            let oi = best_index[lid + step];
            let mi = best_index[lid];
            if (oi != NONE && (mi == NONE || beats(ov, oi, best_value[lid], mi))) {
                best_value[lid] = ov;
                best_index[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[row] = best_index[0];
    }
}
