// Matrix-vector product for one token (decode): y = act(W·x + bias) over up to four row
// segments of one packed weight, optionally added into y (RESIDUAL). Each row is reduced by TPR
// threads reading consecutive vec4s of it (WG / TPR rows per workgroup); their partial sums
// meet in workgroup memory. Layouts and the meaning of every override: src/projection.rs.
// The subgroup variant (matvec_subgroup.wgsl) differs only in that final reduction.

override DTYPE: u32;
// Every row and input block starts on a whole vec4: 16-byte loads (else element loads).
override VEC: bool;
override WG: u32 = 128u;
// Threads per row: a power of two dividing WG.
override TPR: u32 = 32u;
override SEGS: u32 = 1u;
override SEG_END0: u32;
override SEG_END1: u32;
override SEG_END2: u32;
override SEG_END3: u32;
override SEG_K0: u32;
override SEG_K1: u32;
override SEG_K2: u32;
override SEG_K3: u32;
override SEG_XOFF0: u32;
override SEG_XOFF1: u32;
override SEG_XOFF2: u32;
override SEG_XOFF3: u32;
override SEG_WOFF0: u32;
override SEG_WOFF1: u32;
override SEG_WOFF2: u32;
override SEG_WOFF3: u32;
override SEG_YOFF0: u32;
override SEG_YOFF1: u32;
override SEG_YOFF2: u32;
override SEG_YOFF3: u32;
override SEG_M0: u32;
override SEG_M1: u32;
override SEG_M2: u32;
override SEG_M3: u32;
override SEG_ACT0: u32;
override SEG_ACT1: u32;
override SEG_ACT2: u32;
override SEG_ACT3: u32;
override BIAS_MASK: u32 = 0u;
override RESIDUAL: bool = false;
override PART_BASE: u32 = 0u;
override PART_ROWS: u32;
override Q8_SCALES: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn seg_pick(s: u32, a: u32, b: u32, c: u32, d: u32) -> u32 {
    return select(select(select(a, b, s == 1u), c, s == 2u), d, s == 3u);
}

// Segment of row r of this binding (unused segments end at PART_ROWS).
fn seg_of(r: u32) -> u32 {
    return u32(r >= SEG_END0) + u32(r >= SEG_END1) + u32(r >= SEG_END2);
}

fn seg_start(s: u32) -> u32 {
    return seg_pick(s, 0u, SEG_END0, SEG_END1, SEG_END2);
}

// Dot product of weight vec4 c of a row with its inputs (VEC path). wq and xq are the row's
// first weight vec4 and input vec4; a chunk is 4 F32, 8 F16 or 16 Q8_0 values.
fn chunk_dot(wq: u32, xq: u32, c: u32) -> f32 {
    let wd = w[wq + c];
    if (DTYPE == DTYPE_F32) {
        return dot(bitcast<vec4<f32>>(wd), x[xq + c]);
    }
    if (DTYPE == DTYPE_F16) {
        return dot_f16x8(wd, x[xq + 2u * c], x[xq + 2u * c + 1u]);
    }
    let b = (wq + c) / 2u; // flat Q8_0 block: 2 chunks per block
    let sw = Q8_SCALES + b / 2u;
    let xi = xq + 4u * c;
    return q8_scale(w[sw / 4u][sw % 4u], b) * dot_q8x16(wd, x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u]);
}

// Element e of the weight binding, at any alignment.
fn weight_at(e: u32) -> f32 {
    if (DTYPE == DTYPE_F32) {
        return bitcast<f32>(w[e / 4u][e % 4u]);
    }
    if (DTYPE == DTYPE_F16) {
        let i = e / 2u;
        return f16_elem(w[i / 4u][i % 4u], e);
    }
    let i = e / 4u;
    let b = e / Q8_BLOCK;
    let sw = Q8_SCALES + b / 2u;
    return f32(unpack4xI8(w[i / 4u][i % 4u])[e % 4u]) * q8_scale(w[sw / 4u][sw % 4u], b);
}

// This thread's share of the dot product of row r (of this binding) with its input.
fn row_dot(r: u32, lane: u32) -> f32 {
    let s = seg_of(r);
    let k = seg_pick(s, SEG_K0, SEG_K1, SEG_K2, SEG_K3);
    let welem = seg_pick(s, SEG_WOFF0, SEG_WOFF1, SEG_WOFF2, SEG_WOFF3) + (r - seg_start(s)) * k;
    let xelem = seg_pick(s, SEG_XOFF0, SEG_XOFF1, SEG_XOFF2, SEG_XOFF3);
    var acc = vec4<f32>(0.0);
    if (VEC) {
        let per = select(select(16u, 8u, DTYPE == DTYPE_F16), 4u, DTYPE == DTYPE_F32);
        let chunks = k / per;
        let wq = welem / per;
        let xq = xelem / 4u;
        // Four independent loads in flight per thread.
        var c = lane;
        for (; c + 3u * TPR < chunks; c += 4u * TPR) {
            acc += vec4<f32>(chunk_dot(wq, xq, c), chunk_dot(wq, xq, c + TPR), chunk_dot(wq, xq, c + 2u * TPR),
                             chunk_dot(wq, xq, c + 3u * TPR));
        }
        for (; c < chunks; c += TPR) {
            acc.x += chunk_dot(wq, xq, c);
        }
    } else {
        for (var e = lane; e < k; e += TPR) {
            let i = xelem + e;
            acc.x += weight_at(welem + e) * x[i / 4u][i % 4u];
        }
    }
    return (acc.x + acc.y) + (acc.z + acc.w);
}

// Bias, activation and residual for row r of this binding, then the store.
fn store(r: u32, sum: f32) {
    let s = seg_of(r);
    let out = seg_pick(s, SEG_YOFF0, SEG_YOFF1, SEG_YOFF2, SEG_YOFF3) + PART_BASE + r - seg_start(s);
    var v = sum;
    if (((BIAS_MASK >> s) & 1u) == 1u) {
        v += bias[out];
    }
    v = activate(v, seg_pick(s, SEG_ACT0, SEG_ACT1, SEG_ACT2, SEG_ACT3));
    if (RESIDUAL) {
        v += y[out];
    }
    y[out] = v;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = flat_workgroup(wid, nwg) * (WG / TPR) + lid / TPR;
    let lane = lid % TPR;
    var acc = 0.0;
    if (r < PART_ROWS) {
        acc = row_dot(r, lane);
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var step = TPR / 2u; step > 0u; step >>= 1u) {
        if (lane < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    if (lane == 0u && r < PART_ROWS) {
        store(r, partial[lid]);
    }
}
