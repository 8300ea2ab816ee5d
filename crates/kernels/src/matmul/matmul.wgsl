// Tiled matrix-matrix product for prefill: Y[T, rows] = act(X[T, K]·Wᵀ + bias), optionally added
// into Y, over up to four row segments of one packed weight (F32, F16 or Q8_0, dequantised into
// workgroup memory). A workgroup computes a tile of BT tokens x BM weight rows of one segment
// in K slices of BK: it stages the X and W slices k-major in workgroup memory, and each thread
// accumulates a 4 x 4 block (4 tokens x 4 rows) in registers. T comes from a uniform; the grid
// is (weight-row tiles of all segments, token tiles). Layouts and overrides: src/projection.rs.

override DTYPE: u32;
// Every row and input block starts on a multiple of 4 elements: vec4 loads (else element loads).
override VEC: bool;
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

// Cumulative row tiles of the segments (unused segments end at the last tile).
override SEG_TILE_END0: u32;
override SEG_TILE_END1: u32;
override SEG_TILE_END2: u32;
override SEG_TILE_END3: u32;

const BT: u32 = 64u; // tokens per tile
const BM: u32 = 64u; // weight rows per tile
const BK: u32 = 16u; // K slice
const STRIDE: u32 = 17u; // vec4s per k in the staged slices (16 + 1 of padding)

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// x: the token count T.
@group(0) @binding(4) var<uniform> params: vec4<u32>;

// Staged slices, k-major: xs[k * STRIDE + t / 4][t % 4], ws[k * STRIDE + m / 4][m % 4].
var<workgroup> xs: array<vec4<f32>, 272>;
var<workgroup> ws: array<vec4<f32>, 272>;

fn seg_pick(s: u32, a: u32, b: u32, c: u32, d: u32) -> u32 {
    return select(select(select(a, b, s == 1u), c, s == 2u), d, s == 3u);
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

// Weight elements row + kk .. row + kk + 3 (zero past k). VEC: row and kk are multiples of 4.
fn weight4(row: u32, kk: u32, k: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (VEC) {
        if (kk < k) {
            let e = row + kk;
            if (DTYPE == DTYPE_F32) {
                v = bitcast<vec4<f32>>(w[e / 4u]);
            } else if (DTYPE == DTYPE_F16) {
                let wd = w[e / 8u];
                let pair = select(wd.zw, wd.xy, (e & 4u) == 0u);
                v = vec4<f32>(unpack2x16float(pair.x), unpack2x16float(pair.y));
            } else {
                let i = e / 4u;
                let b = e / Q8_BLOCK;
                let sw = Q8_SCALES + b / 2u;
                v = q8_unpack(w[i / 4u][i % 4u]) * q8_scale(w[sw / 4u][sw % 4u], b);
            }
        }
    } else {
        for (var j = 0u; j < 4u; j++) {
            if (kk + j < k) {
                v[j] = weight_at(row + kk + j);
            }
        }
    }
    return v;
}

// Input elements row + kk .. row + kk + 3 (zero past k). VEC: row and kk are multiples of 4.
fn input4(row: u32, kk: u32, k: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (VEC) {
        if (kk < k) {
            v = x[(row + kk) / 4u];
        }
    } else {
        for (var j = 0u; j < 4u; j++) {
            if (kk + j < k) {
                let i = row + kk + j;
                v[j] = x[i / 4u][i % 4u];
            }
        }
    }
    return v;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t_count = params.x;
    let tile = wid.x;
    let s = u32(tile >= SEG_TILE_END0) + u32(tile >= SEG_TILE_END1) + u32(tile >= SEG_TILE_END2);
    let seg_first = seg_pick(s, 0u, SEG_END0, SEG_END1, SEG_END2);
    let rows = seg_pick(s, SEG_END0, SEG_END1, SEG_END2, SEG_END3) - seg_first;
    let k = seg_pick(s, SEG_K0, SEG_K1, SEG_K2, SEG_K3);
    let m0 = (tile - seg_pick(s, 0u, SEG_TILE_END0, SEG_TILE_END1, SEG_TILE_END2)) * BM;
    let t0 = wid.y * BT;
    let w_first = seg_pick(s, SEG_WOFF0, SEG_WOFF1, SEG_WOFF2, SEG_WOFF3);
    let x_first = seg_pick(s, SEG_XOFF0, SEG_XOFF1, SEG_XOFF2, SEG_XOFF3) * t_count;

    // Staging: thread lid loads 4 consecutive k of token / weight row lid / 4.
    let lrow = lid / 4u;
    let lk = (lid % 4u) * 4u;
    let lt = t0 + lrow;
    let lm = m0 + lrow;
    // Compute: thread (lx, ly) owns tokens 4 ly .. 4 ly + 3 and rows 4 lx .. 4 lx + 3.
    let lx = lid % 16u;
    let ly = lid / 16u;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    for (var k0 = 0u; k0 < k; k0 += BK) {
        var xv = vec4<f32>(0.0);
        if (lt < t_count) {
            xv = input4(x_first + lt * k, k0 + lk, k);
        }
        var wv = vec4<f32>(0.0);
        if (lm < rows) {
            wv = weight4(w_first + lm * k, k0 + lk, k);
        }
        for (var j = 0u; j < 4u; j++) {
            xs[(lk + j) * STRIDE + lrow / 4u][lrow % 4u] = xv[j];
            ws[(lk + j) * STRIDE + lrow / 4u][lrow % 4u] = wv[j];
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a = xs[kk * STRIDE + ly];
            let b = ws[kk * STRIDE + lx];
            acc[0] += a.x * b;
            acc[1] += a.y * b;
            acc[2] += a.z * b;
            acc[3] += a.w * b;
        }
        workgroupBarrier();
    }

    let act = seg_pick(s, SEG_ACT0, SEG_ACT1, SEG_ACT2, SEG_ACT3);
    let has_bias = ((BIAS_MASK >> s) & 1u) == 1u;
    let y_row = seg_pick(s, SEG_YOFF0, SEG_YOFF1, SEG_YOFF2, SEG_YOFF3) + PART_BASE;
    let y_stride = seg_pick(s, SEG_M0, SEG_M1, SEG_M2, SEG_M3);
    for (var i = 0u; i < 4u; i++) {
        let t = t0 + 4u * ly + i;
        for (var j = 0u; j < 4u; j++) {
            let m = m0 + 4u * lx + j;
            if (t < t_count && m < rows) {
                var v = acc[i][j];
                if (has_bias) {
                    v += bias[y_row + m];
                }
                v = activate(v, act);
                let out = (y_row - PART_BASE) * t_count + t * y_stride + PART_BASE + m;
                if (RESIDUAL) {
                    v += y[out];
                }
                y[out] = v;
            }
        }
    }
}
