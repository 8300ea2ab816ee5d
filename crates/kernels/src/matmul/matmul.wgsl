// Tiled matrix-matrix product for prefill: Y[T, rows] = act(X[T, K]·Wᵀ + bias), optionally added
// into Y, over up to four row segments of one packed weight (any format of weights.wgsl, dequantised
// while staging into workgroup memory). A workgroup computes a tile of BT tokens x BM = 128 weight rows
// of one segment in K slices of BK = 16: the X and W slices are staged k-major in workgroup
// memory (each slice's global loads are issued before the previous slice's products, held raw
// in registers, and dequantised when stored), and each thread accumulates 8 rows x TT tokens in
// registers (rows 4 lx .. 4 lx + 3 and 64 + 4 lx .. 64 + 4 lx + 3; tokens 4 ly .. 4 ly + 3, and
// for TT = 8 also BT / 2 + 4 ly .. BT / 2 + 4 ly + 3). T comes from a uniform; the grid is
// (weight-row tiles of all segments, token tiles). Layouts and the segment overrides:
// src/projection.rs (declared in src/projection.wgsl); the weight bindings and decoders:
// src/weights.wgsl.
//
// The block formats other than Q8_0, IQ4_NL and IQ4_XS (VEC) stage their K slices in the slot
// order of src/weight_chunks.wgsl: the two slices of a 32-weight chunk are its slots 0-3 and 4-7, and X
// is staged in the same order (the slots' input vec4s), so that each thread loads its row's raw
// chunk once per chunk (held in registers across both slices) and decodes its units from it.

// Tile shape (matmul::Tile): threads along tokens (TY: 4 or 16) and tokens per thread (TT: 4 or 8).
override TOKEN_THREADS: u32 = 16u;
override TOKENS_PER_THREAD: u32 = 8u;
override THREADS: u32 = 16u * TOKEN_THREADS;
override BT: u32 = TOKEN_THREADS * TOKENS_PER_THREAD; // tokens per tile
override BTQ: u32 = BT / 4u; // vec4s per k of the staged X slice
override XS_LEN: u32 = BK * BTQ;
// Staging units (4 consecutive k of one token or weight row) per thread.
override X_UNITS: u32 = BT * BK / 4u / THREADS;
override W_UNITS: u32 = BM * BK / 4u / THREADS;

const BM: u32 = 128u; // weight rows per tile
const BMQ: u32 = 32u; // vec4s per k of the staged W slice
const BK: u32 = 16u; // K slice
const MAX_X_UNITS: u32 = 2u;
const MAX_W_UNITS: u32 = 8u;
const MAX_W_ROWS: u32 = 2u; // weight rows a thread stages (BM / THREADS, at least 1)

// Bindings 1 (w) and 6 (w_d, the weight binding again): weights.wgsl.
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// x: the token count T.
@group(0) @binding(4) var<uniform> params: vec4<u32>;

// Staged slices, k-major: xs[k * BTQ + t / 4][t % 4], ws[k * BMQ + m / 4][m % 4].
var<workgroup> xs: array<vec4<f32>, XS_LEN>;
var<workgroup> ws: array<vec4<f32>, 512>;

// Whether staged weight units hold raw words (dequantised when stored) rather than f32 bits.
fn raw_weights() -> bool {
    return VEC && (DTYPE == DTYPE_F16 || DTYPE == DTYPE_BF16 || DTYPE == DTYPE_Q8_0);
}

// Whether the weights are staged from raw chunks in slot order (weight_chunks.wgsl): the
// chunked formats but IQ4_NL and IQ4_XS, whose table would not fit beside the staged slices in
// 16 KiB of workgroup memory (they take weight4's path).
fn slot_order() -> bool {
    return VEC && chunked() && !uses_iq4_table();
}

// Weight elements row + kk .. row + kk + 3 (zero past k), as loaded: with raw_weights(), F16 and
// BF16 as two words (.xy) and Q8_0 as the quant word (.x), the scale word (.y) and the scale's
// half (.z); otherwise the f32 bits (decoded by weight4 or weight_at, weights.wgsl).
fn weight_unit(row: u32, kk: u32, k: u32) -> vec4<u32> {
    var v = vec4<u32>(0u);
    if (VEC) {
        if (kk < k) {
            let e = row + kk;
            if (DTYPE == DTYPE_F16 || DTYPE == DTYPE_BF16) {
                let wd = w[e / 8u];
                v = vec4<u32>(select(wd.zw, wd.xy, (e & 4u) == 0u), 0u, 0u);
            } else if (DTYPE == DTYPE_Q8_0) {
                let h = D_HALF0 + e / Q8_BLOCK;
                v = vec4<u32>(w_word(e / 4u), w_d[h / 2u], h, 0u);
            } else {
                v = bitcast<vec4<u32>>(weight4(e));
            }
        }
    } else {
        var f = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j++) {
            if (kk + j < k) {
                f[j] = weight_at(row + kk + j);
            }
        }
        v = bitcast<vec4<u32>>(f);
    }
    return v;
}

// The four weights of a unit from weight_unit.
fn dequant(u: vec4<u32>) -> vec4<f32> {
    if (!raw_weights()) {
        return bitcast<vec4<f32>>(u);
    }
    if (DTYPE == DTYPE_F16) {
        return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
    }
    if (DTYPE == DTYPE_BF16) {
        return bf16x4(u.x, u.y);
    }
    return q8_unpack(u.x) * f16_elem(u.y, u.z);
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

// Input vec4 `quad` (0-3) of the K slice at k0 of the input row starting at element `row` (zero
// past k): inputs k0 + 4 quad .. + 3, or, in slot order, the input vec4 of slot
// 4·((k0 / BK) % 2) + quad of chunk k0 / CHUNK.
fn input_quad(row: u32, k0: u32, quad: u32, k: u32) -> vec4<f32> {
    if (slot_order()) {
        return x[row / 4u + chunk_x_vec4(k0 / CHUNK, 4u * ((k0 / BK) % 2u) + quad)];
    }
    return input4(row, k0 + 4u * quad, k);
}

// The segment and rows of weight-row tile `tile` (the grid's x), for T = t_count tokens.
struct TileRows {
    s: u32,       // segment
    rows: u32,    // the segment's rows
    k: u32,       // the segment's row length
    m0: u32,      // the tile's first row within the segment
    w_first: u32, // the segment's first weight element in the binding
    x_first: u32, // the segment's input block (first element)
}

fn tile_rows(tile: u32, t_count: u32) -> TileRows {
    let s = u32(tile >= SEG_TILE_END0) + u32(tile >= SEG_TILE_END1) + u32(tile >= SEG_TILE_END2);
    let seg_first = seg_pick(s, 0u, SEG_END0, SEG_END1, SEG_END2);
    var r: TileRows;
    r.s = s;
    r.rows = seg_pick(s, SEG_END0, SEG_END1, SEG_END2, SEG_END3) - seg_first;
    r.k = seg_pick(s, SEG_K0, SEG_K1, SEG_K2, SEG_K3);
    r.m0 = (tile - seg_pick(s, 0u, SEG_TILE_END0, SEG_TILE_END1, SEG_TILE_END2)) * BM;
    r.w_first = seg_pick(s, SEG_WOFF0, SEG_WOFF1, SEG_WOFF2, SEG_WOFF3);
    r.x_first = seg_pick(s, SEG_XOFF0, SEG_XOFF1, SEG_XOFF2, SEG_XOFF3) * t_count;
    return r;
}

// The epilogue of a thread whose first row is m (rows m .. m + 3 and m + 64 .. m + 67).
fn epilogue(r: TileRows, t_count: u32, m: u32) -> Epilogue {
    var e: Epilogue;
    e.t_count = t_count;
    e.rows = r.rows;
    e.m = m;
    e.act = seg_pick(r.s, SEG_ACT0, SEG_ACT1, SEG_ACT2, SEG_ACT3);
    e.has_bias = ((BIAS_MASK >> r.s) & 1u) == 1u;
    e.y_row = seg_pick(r.s, SEG_YOFF0, SEG_YOFF1, SEG_YOFF2, SEG_YOFF3) + PART_BASE;
    e.y_stride = seg_pick(r.s, SEG_M0, SEG_M1, SEG_M2, SEG_M3);
    return e;
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t_count = params.x;
    let tr = tile_rows(wid.x, t_count);
    let rows = tr.rows;
    let k = tr.k;
    let m0 = tr.m0;
    let t0 = wid.y * BT;
    let w_first = tr.w_first;
    let x_first = tr.x_first;

    // Staging unit u = lid + j · THREADS: token u % BT (weight row u % BM), k 4 (u / BT) .. + 3,
    // so that neighbouring threads store neighbouring words of the k-major slices.
    var xr: array<vec4<f32>, MAX_X_UNITS>;
    var wr: array<vec4<u32>, MAX_W_UNITS>;
    // In slot order: the raw chunk of each of the thread's rows (row (lid + i · THREADS) % BM
    // for i < w_rows; unit j is in row i = j % w_rows).
    var wraw: array<RawChunk, MAX_W_ROWS>;
    let w_rows = select(1u, BM / THREADS, THREADS < BM);
    for (var j = 0u; j < X_UNITS; j++) {
        let u = lid + j * THREADS;
        let t = t0 + u % BT;
        xr[j] = vec4<f32>(0.0);
        if (t < t_count) {
            xr[j] = input_quad(x_first + t * k, 0u, u / BT, k);
        }
    }
    if (slot_order()) {
        for (var i = 0u; i < w_rows; i++) {
            let m = m0 + (lid + i * THREADS) % BM;
            wraw[i] = RawChunk(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), 0u);
            if (m < rows) {
                wraw[i] = chunk_raw((w_first + m * k) / CHUNK);
            }
        }
    } else {
        for (var j = 0u; j < W_UNITS; j++) {
            let u = lid + j * THREADS;
            let m = m0 + u % BM;
            wr[j] = vec4<u32>(0u);
            if (m < rows) {
                wr[j] = weight_unit(w_first + m * k, 4u * (u / BM), k);
            }
        }
    }

    let lx = lid % 16u;
    let ly = lid / 16u;
    // acc[2 i + r]: token i of the thread (see the header), row group r (zero-initialised).
    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < k; k0 += BK) {
        for (var j = 0u; j < X_UNITS; j++) {
            let u = lid + j * THREADS;
            let at = 4u * (u / BT) * BTQ + (u % BT) / 4u;
            let e = u % 4u;
            xs[at][e] = xr[j].x;
            xs[at + BTQ][e] = xr[j].y;
            xs[at + 2u * BTQ][e] = xr[j].z;
            xs[at + 3u * BTQ][e] = xr[j].w;
        }
        for (var j = 0u; j < W_UNITS; j++) {
            let u = lid + j * THREADS;
            let at = 4u * (u / BM) * BMQ + (u % BM) / 4u;
            let e = u % 4u;
            var v: vec4<f32>;
            if (slot_order()) {
                // Rows past the segment hold a zero chunk (decoded as zeros, never stored).
                let g = (w_first + (m0 + u % BM) * k) / CHUNK + k0 / CHUNK;
                v = table_free_slot(wraw[j % w_rows], g, 4u * ((k0 / BK) % 2u) + u / BM);
            } else {
                v = dequant(wr[j]);
            }
            ws[at][e] = v.x;
            ws[at + BMQ][e] = v.y;
            ws[at + 2u * BMQ][e] = v.z;
            ws[at + 3u * BMQ][e] = v.w;
        }
        workgroupBarrier();
        // The next slice's loads, in flight during this slice's products.
        let k1 = k0 + BK;
        if (k1 < k) {
            for (var j = 0u; j < X_UNITS; j++) {
                let u = lid + j * THREADS;
                let t = t0 + u % BT;
                if (t < t_count) {
                    xr[j] = input_quad(x_first + t * k, k1, u / BT, k);
                }
            }
            if (slot_order()) {
                // A chunk's raw words serve both of its slices.
                if (k1 % CHUNK == 0u) {
                    for (var i = 0u; i < w_rows; i++) {
                        let m = m0 + (lid + i * THREADS) % BM;
                        if (m < rows) {
                            wraw[i] = chunk_raw((w_first + m * k) / CHUNK + k1 / CHUNK);
                        }
                    }
                }
            } else {
                for (var j = 0u; j < W_UNITS; j++) {
                    let u = lid + j * THREADS;
                    let m = m0 + u % BM;
                    if (m < rows) {
                        wr[j] = weight_unit(w_first + m * k, k1 + 4u * (u / BM), k);
                    }
                }
            }
        }
        for (var kk = 0u; kk < BK; kk++) {
            let b0 = ws[kk * BMQ + lx];
            let b1 = ws[kk * BMQ + 16u + lx];
            let a0 = xs[kk * BTQ + ly];
            acc[0] += a0.x * b0;
            acc[1] += a0.x * b1;
            acc[2] += a0.y * b0;
            acc[3] += a0.y * b1;
            acc[4] += a0.z * b0;
            acc[5] += a0.z * b1;
            acc[6] += a0.w * b0;
            acc[7] += a0.w * b1;
            if (TOKENS_PER_THREAD == 8u) {
                let a1 = xs[kk * BTQ + TOKEN_THREADS + ly];
                acc[8] += a1.x * b0;
                acc[9] += a1.x * b1;
                acc[10] += a1.y * b0;
                acc[11] += a1.y * b1;
                acc[12] += a1.z * b0;
                acc[13] += a1.z * b1;
                acc[14] += a1.w * b0;
                acc[15] += a1.w * b1;
            }
        }
        workgroupBarrier();
    }

    // The epilogue, one token at a time with constant accumulator indices (so that the
    // accumulators stay in registers).
    let e = epilogue(tr, t_count, m0 + 4u * lx);
    let ta = t0 + 4u * ly;
    store_token(e, ta, acc[0], acc[1]);
    store_token(e, ta + 1u, acc[2], acc[3]);
    store_token(e, ta + 2u, acc[4], acc[5]);
    store_token(e, ta + 3u, acc[6], acc[7]);
    if (TOKENS_PER_THREAD == 8u) {
        let tb = ta + 4u * TOKEN_THREADS;
        store_token(e, tb, acc[8], acc[9]);
        store_token(e, tb + 1u, acc[10], acc[11]);
        store_token(e, tb + 2u, acc[12], acc[13]);
        store_token(e, tb + 3u, acc[14], acc[15]);
    }
}

// What the epilogue of one thread needs: its first row e.m (rows e.m .. e.m + 3 and 64 more).
struct Epilogue {
    t_count: u32,
    rows: u32,
    m: u32,
    act: u32,
    has_bias: bool,
    y_row: u32,
    y_stride: u32,
}

// Bias, activation and (residual) store of token t's results for the thread's rows: r0 for
// rows e.m .. e.m + 3, r1 for rows e.m + 64 .. e.m + 67.
fn store_token(e: Epilogue, t: u32, r0: vec4<f32>, r1: vec4<f32>) {
    if (t >= e.t_count) {
        return;
    }
    for (var j = 0u; j < 8u; j++) {
        let m = e.m + select(j, 60u + j, j >= 4u);
        if (m < e.rows) {
            var v = select(r0[j & 3u], r1[j & 3u], j >= 4u);
            if (e.has_bias) {
                v += bias[e.y_row + m];
            }
            v = activate(v, e.act);
            let out = (e.y_row - PART_BASE) * e.t_count + t * e.y_stride + PART_BASE + m;
            if (RESIDUAL) {
                v += y[out];
            }
            y[out] = v;
        }
    }
}

// ---- main_lanes: the tile for CPU adapters ------------------------------------------------
// No workgroup memory and no barriers: each of LANE_THREADS invocations computes the 8 rows
// 4 lid .. 4 lid + 3 and 64 + 4 lid .. 64 + 4 lid + 3 of the workgroup's 128 for LANE_TOKENS
// tokens, reading its weights straight from the binding (each dequantised once for all its
// tokens) and the inputs at the same (token, k) in every invocation. A CPU driver runs the
// invocations as the lanes of one SIMD vector, so the inputs are loaded once per vector rather
// than once per lane and staged tiles would only add copies and barriers. The grid is
// (weight-row tiles, token tiles of LANE_TOKENS).
override LANE_TOKENS: u32 = 8u; // at most 8 (acc)
const LANE_THREADS: u32 = 16u;

// Four weights of row m (zero for rows past the segment's end).
fn lane_weights(tr: TileRows, m: u32, kk: u32) -> vec4<f32> {
    if (m >= tr.rows) {
        return vec4<f32>(0.0);
    }
    return dequant(weight_unit(tr.w_first + m * tr.k, kk, tr.k));
}

@compute @workgroup_size(LANE_THREADS)
fn main_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t_count = params.x;
    let tr = tile_rows(wid.x, t_count);
    let t0 = wid.y * LANE_TOKENS;
    let tokens = min(LANE_TOKENS, t_count - t0);
    let m = tr.m0 + 4u * lid;
    // acc[2 j + h]: token t0 + j, rows m + 64 h .. m + 64 h + 3.
    var acc: array<vec4<f32>, 16>;
    for (var kk = 0u; kk < tr.k; kk += 4u) {
        let w0 = lane_weights(tr, m, kk);
        let w1 = lane_weights(tr, m + 1u, kk);
        let w2 = lane_weights(tr, m + 2u, kk);
        let w3 = lane_weights(tr, m + 3u, kk);
        let w4 = lane_weights(tr, m + 64u, kk);
        let w5 = lane_weights(tr, m + 65u, kk);
        let w6 = lane_weights(tr, m + 66u, kk);
        let w7 = lane_weights(tr, m + 67u, kk);
        for (var j = 0u; j < LANE_TOKENS; j++) {
            if (j < tokens) {
                let xv = input4(tr.x_first + (t0 + j) * tr.k, kk, tr.k);
                acc[2u * j] += vec4<f32>(dot(w0, xv), dot(w1, xv), dot(w2, xv), dot(w3, xv));
                acc[2u * j + 1u] += vec4<f32>(dot(w4, xv), dot(w5, xv), dot(w6, xv), dot(w7, xv));
            }
        }
    }
    let e = epilogue(tr, t_count, m);
    for (var j = 0u; j < LANE_TOKENS; j++) {
        store_token(e, t0 + j, acc[2u * j], acc[2u * j + 1u]);
    }
}
