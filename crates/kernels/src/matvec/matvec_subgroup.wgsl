// Subgroup variant of matvec.wgsl, identical but for the final reduction: y = act(W·x + bias)
// for one token over up to four row segments, optionally added into y. Each row is reduced by
// TPR threads of one subgroup (TPR <= the adapter's smallest subgroup size; rows occupy aligned
// runs of TPR lanes) with subgroupShuffleXor: no workgroup memory, no barriers (in `main`).
// Entry `main_prologue`: LayerNorm + token shift of the raw residual folded into the input
// (its statistics meet in workgroup memory).
// Layouts and the meaning of every override: src/projection.rs.

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

// ---- LayerNorm + token-shift prologue (entry main_prologue, one token) ----------------------
// The input is the raw residual x [C]; every workgroup normalises it itself and feeds segment s
// the mixed input xa + (prev - xa) * mu_s, with xa = LN(x; ln_w, ln_b), prev the previous
// token's xa (shift half PARITY) and mu_s row MIX_ROW + SEG_XOFFs / C of vecs. Workgroup 0 writes
// xa to shift half 1 - PARITY when WRITE_SHIFT (the caller alternates PARITY per token, so no
// invocation reads what this dispatch writes). Every segment has K = C.
override PROLOGUE: bool = false;
override C: u32 = 1u;
override EPS: f32 = 1e-5;
// Rows of vecs (rows of C floats) holding the LayerNorm weight and bias and the first mix.
override LN_W_ROW: u32 = 0u;
override LN_B_ROW: u32 = 0u;
override MIX_ROW: u32 = 0u;
override PARITY: u32 = 0u;
override WRITE_SHIFT: bool = false;
// Row groups (of WG / TPR rows) per workgroup, sharing one prologue.
override REPEAT: u32 = 1u;
// vec4s of the prepared input in workgroup memory: ceil(C / 4) in main_prologue.
override XS_LEN: u32 = 1u;

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// main_prologue only: per-layer vectors [rows, C] and the token-shift state [2, C].
@group(0) @binding(4) var<storage, read> vecs: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> shift: array<vec4<f32>>;

// The current segment's mixed input (main_prologue).
var<workgroup> xs: array<vec4<f32>, XS_LEN>;
// LayerNorm statistics (main_prologue).
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

// Input vec4 q of the current row's segment: the bound x, or the prepared input (prologue).
fn x_vec(q: u32) -> vec4<f32> {
    if (PROLOGUE) {
        return xs[q];
    }
    return x[q];
}

// Dot product of weight vec4 c of a row with its inputs (VEC path). wq and xq are the row's
// first weight vec4 and input vec4; a chunk is 4 F32, 8 F16 or 16 Q8_0 values.
fn chunk_dot(wq: u32, xq: u32, c: u32) -> f32 {
    let wd = w[wq + c];
    if (DTYPE == DTYPE_F32) {
        return dot(bitcast<vec4<f32>>(wd), x_vec(xq + c));
    }
    if (DTYPE == DTYPE_F16) {
        return dot_f16x8(wd, x_vec(xq + 2u * c), x_vec(xq + 2u * c + 1u));
    }
    let b = (wq + c) / 2u; // flat Q8_0 block: 2 chunks per block
    let sw = Q8_SCALES + b / 2u;
    let xi = xq + 4u * c;
    return q8_scale(w[sw / 4u][sw % 4u], b) * dot_q8x16(wd, x_vec(xi), x_vec(xi + 1u), x_vec(xi + 2u), x_vec(xi + 3u));
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
    // The prologue prepares each segment's input at the start of xs.
    let xelem = select(seg_pick(s, SEG_XOFF0, SEG_XOFF1, SEG_XOFF2, SEG_XOFF3), 0u, PROLOGUE);
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
            acc.x += weight_at(welem + e) * x_vec(i / 4u)[i % 4u];
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

// The sum of the TPR partial sums of each row, in every lane of the row: a butterfly over the
// row's TPR lanes (every lane of the subgroup takes part; call from uniform control flow).
fn row_sum(lid: u32, lane: u32, acc: f32) -> f32 {
    var total = acc;
    for (var off = TPR / 2u; off > 0u; off >>= 1u) {
        total += subgroupShuffleXor(total, off);
    }
    return total;
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
    let total = row_sum(lid, lane, acc);
    if (lane == 0u && r < PART_ROWS) {
        store(r, total);
    }
}

// ---- prologue helpers and entry ---------------------------------------------------------------

// Workgroup sum of one value per invocation, returned to every invocation (uniform control flow).
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

// Which lanes of vec4 q hold channels below C.
fn in_row(q: u32) -> vec4<bool> {
    return vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(C);
}

// Channels 4q..4q+3 of the raw x (zero past C).
fn raw_x(q: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), x[q], in_row(q));
}

// Channels 4q..4q+3 of row `row` of vecs (zero past C). When C % 4 != 0 rows start inside a
// vec4: element loads, none past the row.
fn vecs_row(row: u32, q: u32) -> vec4<f32> {
    if (C % 4u == 0u) {
        return vecs[row * (C / 4u) + q];
    }
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let ch = 4u * q + j;
        if (ch < C) {
            let e = row * C + ch;
            v[j] = vecs[e / 4u][e % 4u];
        }
    }
    return v;
}

// Channels 4q..4q+3 of half h of the shift state (zero past C; never a channel of the other half).
fn shift_row(h: u32, q: u32) -> vec4<f32> {
    if (C % 4u == 0u) {
        return shift[h * (C / 4u) + q];
    }
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let ch = 4u * q + j;
        if (ch < C) {
            let e = h * C + ch;
            v[j] = shift[e / 4u][e % 4u];
        }
    }
    return v;
}

// Stores channels 4q..4q+3 (those below C) into half h of the shift state.
fn store_shift(h: u32, q: u32, v: vec4<f32>) {
    if (C % 4u == 0u) {
        shift[h * (C / 4u) + q] = v;
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let ch = 4u * q + j;
        if (ch < C) {
            let e = h * C + ch;
            shift[e / 4u][e % 4u] = v[j];
        }
    }
}

// One token with the LayerNorm + token-shift prologue (PROLOGUE = true): each workgroup owns
// REPEAT groups of WG / TPR consecutive rows, normalises x itself, then for each segment among
// its rows prepares that segment's mixed input in xs and reduces its rows of that segment.
@compute @workgroup_size(WG)
fn main_prologue(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let wg = flat_workgroup(wid, nwg);
    let rows_per_group = WG / TPR;
    let first = wg * REPEAT * rows_per_group;
    if (first >= PART_ROWS) {
        return; // a whole spare workgroup of a 2-D grid (uniform)
    }
    let last = min(first + REPEAT * rows_per_group, PART_ROWS) - 1u;
    let lane = lid % TPR;
    let nq = (C + 3u) / 4u;
    // LayerNorm statistics: the mean, then the centred variance; the raw x stays in xs.
    var sum = 0.0;
    for (var q = lid; q < nq; q += WG) {
        let v = raw_x(q);
        xs[q] = v;
        sum += (v.x + v.y) + (v.z + v.w);
    }
    let mean = workgroup_sum(lid, sum) / f32(C);
    var sq = 0.0;
    for (var q = lid; q < nq; q += WG) {
        let d = select(vec4<f32>(0.0), xs[q] - mean, in_row(q));
        sq += dot(d, d);
    }
    let inv = inverseSqrt(workgroup_sum(lid, sq) / f32(C) + EPS);
    let s0 = seg_of(first);
    for (var s = s0; s <= seg_of(last); s++) {
        // The segment's input xa + (prev - xa) * mu_s; each invocation prepares its own vec4s
        // (the same ones it read above, so xs needs no barrier before this loop).
        let mix = MIX_ROW + seg_pick(s, SEG_XOFF0, SEG_XOFF1, SEG_XOFF2, SEG_XOFF3) / C;
        for (var q = lid; q < nq; q += WG) {
            var raw = xs[q];
            if (s != s0) {
                raw = raw_x(q);
            }
            let xa = (raw - mean) * inv * vecs_row(LN_W_ROW, q) + vecs_row(LN_B_ROW, q);
            if (WRITE_SHIFT && wg == 0u && s == s0) {
                store_shift(1u - PARITY, q, xa);
            }
            xs[q] = xa + (shift_row(PARITY, q) - xa) * vecs_row(mix, q);
        }
        workgroupBarrier();
        for (var g = 0u; g < REPEAT; g++) {
            let r = first + g * rows_per_group + lid / TPR;
            let mine = r <= last && seg_of(r) == s;
            var acc = 0.0;
            if (mine) {
                acc = row_dot(r, lane);
            }
            let total = row_sum(lid, lane, acc);
            if (mine && lane == 0u) {
                store(r, total);
            }
        }
        workgroupBarrier();
    }
}
