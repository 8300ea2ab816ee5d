// Matrix-vector product for one token (decode): y = act(W·x + bias) over up to four row
// segments of one packed weight, optionally added into y (RESIDUAL). Each row is reduced by TPR
// threads reading consecutive vec4s of it (WG / TPR rows per workgroup). Layouts and the meaning
// of every segment override: src/projection.rs (declared in src/projection.wgsl); the weight
// binding and its decoders: src/weights.wgsl; the chunk decoders of the block formats other
// than Q8_0: src/weight_chunks.wgsl.
// The module is this body plus one final reduction (`row_sum`, `workgroup_sum`):
// reduce.wgsl (module matvec.wgsl) or reduce_subgroup.wgsl (module
// matvec_subgroup.wgsl).
// Entry `main`: input x as bound. Entry `main_prologue`: LayerNorm + token shift of the raw
// residual folded into the input (see the prologue section below).

override WG: u32 = 128u;
// Threads per row: a power of two dividing WG.
override TPR: u32 = 32u;
// Rows per row group (1, 2 or 4): the TPR threads of a group reduce R consecutive rows of one
// segment together, loading each input vec4 once for all of them.
override R: u32 = 1u;

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
// vec4s of the prepared input in workgroup memory: ceil(C / 4) in main_prologue.
override XS_LEN: u32 = 1u;
// The prepared input is stored chunk-transposed: vec4 j of weight chunk c (a chunk is 2 input
// vec4s for F16 and BF16, 4 for Q8_0, the 8 slots of weight_chunks.wgsl for the other block
// formats, 1 for F32) at j·(XS_LEN / V) + c, so that the threads of a row group, which read
// consecutive chunks, read consecutive vec4s (no bank conflicts). Needs VEC.
override PERMUTE_X: bool = false;

// Bindings 1 (w) and 6 (w_d, the weight binding again): weights.wgsl.
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// main_prologue only: per-layer vectors [rows, C] and the token-shift state [2, C].
@group(0) @binding(4) var<storage, read> vecs: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> shift: array<vec4<f32>>;

// The current segment's mixed input (main_prologue).
var<workgroup> xs: array<vec4<f32>, XS_LEN>;
// Partial sums of the reductions (reduce_*.wgsl).
var<workgroup> partial: array<f32, WG>;

// Segment of row r of this binding (unused segments end at PART_ROWS).
fn seg_of(r: u32) -> u32 {
    return u32(r >= SEG_END0) + u32(r >= SEG_END1) + u32(r >= SEG_END2);
}

fn seg_start(s: u32) -> u32 {
    return seg_pick(s, 0u, SEG_END0, SEG_END1, SEG_END2);
}

// Weights per chunk: one vec4 of words for F16, BF16 (8) and Q8_0 (16), one chunk of
// weight_chunks.wgsl (32) for the other block formats, one vec4 (4) for F32.
fn weights_per_chunk() -> u32 {
    if (chunked()) {
        return CHUNK;
    }
    return select(select(4u, 8u, DTYPE == DTYPE_F16 || DTYPE == DTYPE_BF16), 16u, DTYPE == DTYPE_Q8_0);
}

// Input vec4s per weight chunk.
fn vec4s_per_chunk() -> u32 {
    return weights_per_chunk() / 4u;
}

// Where input vec4 q of a prepared input of nq vec4s lives in xs.
fn xs_slot(q: u32, nq: u32) -> u32 {
    if (PERMUTE_X && chunked()) {
        let cj = chunk_slot_of_x(q);
        return cj.y * (nq / CHUNK_SLOTS) + cj.x;
    }
    if (PERMUTE_X) {
        let v = vec4s_per_chunk();
        return (q % v) * (nq / v) + q / v;
    }
    return q;
}

// Input vec4 q of a segment with rows of k values: the bound x, or the prepared input
// (main_prologue).
fn x_vec(q: u32, k: u32) -> vec4<f32> {
    if (PROLOGUE) {
        return xs[xs_slot(q, k / 4u)];
    }
    return x[q];
}

// The inputs of one weight chunk (VEC path): 8 F16 or BF16, 16 Q8_0 or 4 values (unused fields
// 0). The chunked formats use x_slots instead.
struct XChunk {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

// The inputs of chunk c of a row of k values whose input starts at vec4 xq.
fn x_chunk(xq: u32, c: u32, k: u32) -> XChunk {
    let zero = vec4<f32>(0.0);
    if (DTYPE == DTYPE_F16 || DTYPE == DTYPE_BF16) {
        let i = xq + 2u * c;
        return XChunk(x_vec(i, k), x_vec(i + 1u, k), zero, zero);
    }
    if (DTYPE == DTYPE_Q8_0) {
        let i = xq + 4u * c;
        return XChunk(x_vec(i, k), x_vec(i + 1u, k), x_vec(i + 2u, k), x_vec(i + 3u, k));
    }
    return XChunk(x_vec(xq + c, k), zero, zero, zero);
}

// Dot product of weight chunk c of a row (whose first chunk is wq) with its inputs (F32, F16,
// BF16, Q8_0; the chunked formats: chunk32_dot).
fn chunk_dot(wq: u32, c: u32, xc: XChunk) -> f32 {
    if (DTYPE == DTYPE_F16) {
        return dot_f16x8(w[wq + c], xc.a, xc.b);
    }
    if (DTYPE == DTYPE_BF16) {
        return dot_bf16x8(w[wq + c], xc.a, xc.b);
    }
    if (DTYPE == DTYPE_Q8_0) {
        let b = (wq + c) / 2u; // flat Q8_0 block: 2 chunks per block
        return block_d(b) * dot_q8x16(w[wq + c], xc.a, xc.b, xc.c, xc.d);
    }
    return dot(bitcast<vec4<f32>>(w[wq + c]), xc.a);
}

// Input vec4 of slot j of the row's chunk c (chunked formats; the row's input starts at vec4
// xq): from the bound x, or from the prepared input, which main_prologue stores in slot order.
fn x_slot(xq: u32, c: u32, j: u32, k: u32) -> vec4<f32> {
    if (PROLOGUE && PERMUTE_X) {
        return xs[j * (k / CHUNK) + c];
    }
    return x_vec(xq + chunk_x_vec4(c, j), k);
}

// The inputs of the row's chunk c in slot order (chunked formats).
fn x_slots(xq: u32, c: u32, k: u32) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(x_slot(xq, c, 0u, k), x_slot(xq, c, 1u, k), x_slot(xq, c, 2u, k), x_slot(xq, c, 3u, k),
                               x_slot(xq, c, 4u, k), x_slot(xq, c, 5u, k), x_slot(xq, c, 6u, k), x_slot(xq, c, 7u, k));
}

// Dot product of flat chunk g of the binding with its inputs (chunked formats): one load of
// its raw words, then its 8 slots decoded from registers.
fn chunk32_dot(g: u32, xc: array<vec4<f32>, 8>) -> f32 {
    let r = chunk_raw(g);
    let a = dot(chunk_slot(r, g, 0u), xc[0]) + dot(chunk_slot(r, g, 1u), xc[1]);
    let b = dot(chunk_slot(r, g, 2u), xc[2]) + dot(chunk_slot(r, g, 3u), xc[3]);
    let c = dot(chunk_slot(r, g, 4u), xc[4]) + dot(chunk_slot(r, g, 5u), xc[5]);
    let d = dot(chunk_slot(r, g, 6u), xc[6]) + dot(chunk_slot(r, g, 7u), xc[7]);
    return (a + b) + (c + d);
}

// rows_dot for the chunked formats: the row group's TPR threads take consecutive chunks (two
// per step when R = 1, so that two chunks' loads are in flight); each chunk's inputs serve the
// group's R rows. `welem` and `xelem` as in rows_dot.
fn rows_dot_chunked(welem: u32, xelem: u32, k: u32, lane: u32) -> vec4<f32> {
    let chunks = k / CHUNK;
    let g0 = welem / CHUNK;
    let xq = xelem / 4u;
    var acc = vec4<f32>(0.0);
    var c = lane;
    if (R == 1u) {
        for (; c + TPR < chunks; c += 2u * TPR) {
            acc.x += chunk32_dot(g0 + c, x_slots(xq, c, k));
            acc.y += chunk32_dot(g0 + c + TPR, x_slots(xq, c + TPR, k));
        }
        if (c < chunks) {
            acc.x += chunk32_dot(g0 + c, x_slots(xq, c, k));
        }
        return vec4<f32>(acc.x + acc.y, 0.0, 0.0, 0.0);
    }
    for (; c < chunks; c += TPR) {
        let xc = x_slots(xq, c, k);
        for (var j = 0u; j < R; j++) {
            acc[j] += chunk32_dot(g0 + j * chunks + c, xc);
        }
    }
    return acc;
}

// This thread's shares of the dot products of rows r0 .. r0 + R - 1 (of this binding, all in
// one segment) with their input: component j for row r0 + j.
fn rows_dot(r0: u32, lane: u32) -> vec4<f32> {
    let s = seg_of(r0);
    let k = seg_pick(s, SEG_K0, SEG_K1, SEG_K2, SEG_K3);
    let welem = seg_pick(s, SEG_WOFF0, SEG_WOFF1, SEG_WOFF2, SEG_WOFF3) + (r0 - seg_start(s)) * k;
    // The prologue prepares each segment's input at the start of xs.
    let xelem = select(seg_pick(s, SEG_XOFF0, SEG_XOFF1, SEG_XOFF2, SEG_XOFF3), 0u, PROLOGUE);
    var acc = vec4<f32>(0.0);
    if (VEC && chunked()) {
        return rows_dot_chunked(welem, xelem, k, lane);
    }
    if (VEC) {
        let per = weights_per_chunk();
        let chunks = k / per;
        let wq = welem / per;
        let xq = xelem / 4u;
        var c = lane;
        if (R == 1u) {
            // Four independent loads in flight per thread.
            for (; c + 3u * TPR < chunks; c += 4u * TPR) {
                acc += vec4<f32>(chunk_dot(wq, c, x_chunk(xq, c, k)), chunk_dot(wq, c + TPR, x_chunk(xq, c + TPR, k)),
                                 chunk_dot(wq, c + 2u * TPR, x_chunk(xq, c + 2u * TPR, k)),
                                 chunk_dot(wq, c + 3u * TPR, x_chunk(xq, c + 3u * TPR, k)));
            }
            for (; c < chunks; c += TPR) {
                acc.x += chunk_dot(wq, c, x_chunk(xq, c, k));
            }
            return vec4<f32>((acc.x + acc.y) + (acc.z + acc.w), 0.0, 0.0, 0.0);
        }
        // 2·R independent loads in flight per thread; each input chunk serves R rows.
        for (; c + TPR < chunks; c += 2u * TPR) {
            let x0 = x_chunk(xq, c, k);
            let x1 = x_chunk(xq, c + TPR, k);
            for (var j = 0u; j < R; j++) {
                acc[j] += chunk_dot(wq + j * chunks, c, x0) + chunk_dot(wq + j * chunks, c + TPR, x1);
            }
        }
        if (c < chunks) {
            let x0 = x_chunk(xq, c, k);
            for (var j = 0u; j < R; j++) {
                acc[j] += chunk_dot(wq + j * chunks, c, x0);
            }
        }
    } else {
        for (var e = lane; e < k; e += TPR) {
            let i = xelem + e;
            let xv = x_vec(i / 4u, k)[i % 4u];
            for (var j = 0u; j < R; j++) {
                acc[j] += weight_at(welem + j * k + e) * xv;
            }
        }
    }
    return acc;
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
    if (VEC && uses_iq4_table()) {
        iq4_table_fill(lid);
        workgroupBarrier();
    }
    let r0 = (flat_workgroup(wid, nwg) * (WG / TPR) + lid / TPR) * R;
    let lane = lid % TPR;
    var acc = vec4<f32>(0.0);
    if (r0 < PART_ROWS) {
        acc = rows_dot(r0, lane);
    }
    for (var j = 0u; j < R; j++) {
        let total = row_sum(lid, lane, acc[j], TPR);
        if (lane == 0u && r0 + j < PART_ROWS) {
            store(r0 + j, total);
        }
    }
}

// ---- prologue helpers and entry ---------------------------------------------------------------


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
// one group of WG / TPR · R consecutive rows, normalises x itself, then for each segment among
// its rows prepares that segment's mixed input in xs and reduces its rows of that segment.
@compute @workgroup_size(WG)
fn main_prologue(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    if (VEC && uses_iq4_table()) {
        iq4_table_fill(lid);
        workgroupBarrier();
    }
    let wg = flat_workgroup(wid, nwg);
    let rows_per_group = WG / TPR * R;
    let first = wg * rows_per_group;
    if (first >= PART_ROWS) {
        return; // a whole spare workgroup of a 2-D grid (uniform)
    }
    let last = min(first + rows_per_group, PART_ROWS) - 1u;
    let nq = (C + 3u) / 4u;
    // LayerNorm statistics: the mean, then the centred variance (x is read from the cache).
    var sum = 0.0;
    for (var q = lid; q < nq; q += WG) {
        let v = raw_x(q);
        sum += (v.x + v.y) + (v.z + v.w);
    }
    let mean = workgroup_sum(lid, sum, WG) / f32(C);
    var sq = 0.0;
    for (var q = lid; q < nq; q += WG) {
        let d = select(vec4<f32>(0.0), raw_x(q) - mean, in_row(q));
        sq += dot(d, d);
    }
    let inv = inverseSqrt(workgroup_sum(lid, sq, WG) / f32(C) + EPS);
    let s0 = seg_of(first);
    for (var s = s0; s <= seg_of(last); s++) {
        // The segment's input xa + (prev - xa) * mu_s (the barriers around the row loop order
        // these writes after every read of the previous segment's input).
        let mix = MIX_ROW + seg_pick(s, SEG_XOFF0, SEG_XOFF1, SEG_XOFF2, SEG_XOFF3) / C;
        for (var q = lid; q < nq; q += WG) {
            let xa = (raw_x(q) - mean) * inv * vecs_row(LN_W_ROW, q) + vecs_row(LN_B_ROW, q);
            if (WRITE_SHIFT && wg == 0u && s == s0) {
                store_shift(1u - PARITY, q, xa);
            }
            xs[xs_slot(q, nq)] = xa + (shift_row(PARITY, q) - xa) * vecs_row(mix, q);
        }
        workgroupBarrier();
        segment_rows(s, first, last, lid);
        workgroupBarrier();
    }
}

// The rows first..=last of segment s, whose input is prepared in xs (call from uniform control
// flow).
fn segment_rows(s: u32, first: u32, last: u32, lid: u32) {
    let lane = lid % TPR;
    let r0 = first + lid / TPR * R;
    let mine = r0 <= last && seg_of(r0) == s;
    var acc = vec4<f32>(0.0);
    if (mine) {
        acc = rows_dot(r0, lane);
    }
    for (var j = 0u; j < R; j++) {
        let total = row_sum(lid, lane, acc[j], TPR);
        if (mine && lane == 0u) {
            store(r0 + j, total);
        }
    }
}
