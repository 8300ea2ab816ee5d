// Embedding gather + LayerNorm (ln0): x[t] = LN(table[tokens[t]]; weight, bias) for T token
// ids (T = arrayLength(tokens)). One workgroup per token.
//
// The table [V, C] may be bound in row parts (a large table exceeds one binding); each part is
// one dispatch whose workgroups skip tokens outside [FIRST_ROW, FIRST_ROW + PART_ROWS). Token
// ids >= V cannot be checked by the CPU (they come from the GPU), so the LAST_PART dispatch
// writes a row of NaN for them: a bad id is never silently replaced by a valid row.
//
// The table in any format of weights.wgsl (DTYPE): the part's rows (block bodies, F32 words or
// half pairs) bound as `w` (binding 1); for formats with a `d` region, the part's `d` halves bound
// as `w_d` (binding 6), the part's first at half D_HALF0 (else `w_d` is the part's rows again).

override C: u32;
override V: u32;
override FIRST_ROW: u32 = 0u;
override PART_ROWS: u32;
override LAST_PART: bool = true;
override EPS: f32 = 1e-5;
override WG: u32 = 256u; // a power of two

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

var<workgroup> partial: array<f32, WG>;
var<workgroup> token_id: u32;

// Element i of row r of this part, dequantised.
fn element(r: u32, i: u32) -> f32 {
    return weight_at(r * C + i);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_workgroup(wid, nwg);
    if (t >= arrayLength(&tokens)) {
        return;
    }
    if (lid == 0u) {
        token_id = tokens[t];
    }
    let id = workgroupUniformLoad(&token_id);
    let base = t * C;
    if (id >= V) {
        if (LAST_PART) {
            let nan = bitcast<f32>(0x7fc00000u | (lid & 0u));
            for (var i = lid; i < C; i += WG) {
                x[base + i] = nan;
            }
        }
        return;
    }
    if (id < FIRST_ROW || id - FIRST_ROW >= PART_ROWS) {
        return;
    }
    let r = id - FIRST_ROW;
    var s = 0.0;
    for (var i = lid; i < C; i += WG) {
        s += element(r, i);
    }
    let mean = workgroup_sum(lid, s, WG) / f32(C);
    var q = 0.0;
    for (var i = lid; i < C; i += WG) {
        let d = element(r, i) - mean;
        q += d * d;
    }
    let inv = inverseSqrt(workgroup_sum(lid, q, WG) / f32(C) + EPS);
    for (var i = lid; i < C; i += WG) {
        x[base + i] = (element(r, i) - mean) * inv * weight[i] + bias[i];
    }
}
