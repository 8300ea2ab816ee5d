enable f16;
enable wgpu_cooperative_matrix;
// Matrix-matrix product for prefill on tensor cores (cooperative matrices, 16x16x16 tiles, f16
// inputs, f32 accumulation): Y[T, rows] = act(X[T, K]·Wᵀ + bias), optionally added into Y, over
// up to four row segments of one packed weight (any format of src/weights.wgsl). Same layouts,
// overrides (src/projection.wgsl) and epilogues as matmul.wgsl (src/projection.rs), restricted
// to K a multiple of 32 and inputs starting on a multiple of 4 elements (the launcher checks; VEC
// is set but this kernel always loads vec4s).
//
// A workgroup of 128 invocations (4 groups of 32 that run the cooperative operations together,
// split by local index) computes 128 tokens x 128 weight rows of one segment. Per K slice of
// 32 it stages X (converted from f32) and W (F16 copied; BF16 widened; Q8_0 dequantised with
// its block scale; the other block formats as one 32-weight chunk of weight_chunks.wgsl per
// row and thread, decoded from its raw words, and X in the chunk's slot order to match; F32 by
// weight4; then rounded) as f16 in workgroup memory, rows padded to 40 halves; the global loads
// of the next slice (raw words) are issued before the tensor-core work on the current one.
// Group g (2 x 2) owns 64 tokens x 64
// rows: 4 x 4 accumulator tiles. The results go through workgroup memory, one 16x16 tile per
// group at a time, and the epilogue (bias, activation, residual, bounds) runs per element.
// Every cooperative operation and barrier runs in workgroup-uniform control flow.
//
// SPLIT: X is staged as hi + lo (two f16 each) and multiplied twice, which recovers about f32
// input precision on the X side at twice the tensor-core work.

override SPLIT: bool = false;

const BT: u32 = 128u; // tokens per workgroup
const BM: u32 = 128u; // weight rows per workgroup
const BK: u32 = 32u; // K slice
const LD: u32 = 40u; // halves per staged row (32 + 8 of padding)
const LANES: u32 = 32u; // invocations per cooperative group

// Bindings 1 (w) and 6 (w_d, the weight binding again): weights.wgsl.
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// x: the token count T.
@group(0) @binding(4) var<uniform> params: vec4<u32>;

// Staged slices, row-major: xs[t * LD + kk] (token t), ws[m * LD + kk] (weight row m).
var<workgroup> xs: array<f16, 5120>;
var<workgroup> xs_lo: array<f16, 5120>;
var<workgroup> ws: array<f16, 5120>;
// One 16x16 result tile per group, row-major (token-major).
var<workgroup> cs: array<f32, 1024>;

// The epilogue of one geometry: which segment, where its outputs go.
struct Out {
    t_count: u32,
    rows: u32,
    act: u32,
    has_bias: bool,
    y_row: u32,
    y_stride: u32,
}

// Writes accumulator tile `acc` of group `g` (lane `lane`) for tokens t0.. and rows m0..:
// through workgroup memory, then per element with bounds checks.
fn store_tile(acc: coop_mat16x16<f32, C>, g: u32, lane: u32, t0: u32, m0: u32, o: Out) {
    workgroupBarrier();
    coopStoreT(acc, &cs[g * 256u], 16u);
    workgroupBarrier();
    for (var i = 0u; i < 8u; i++) {
        let e = lane + i * LANES;
        let t = t0 + e / 16u;
        let m = m0 + e % 16u;
        if (t < o.t_count && m < o.rows) {
            var v = cs[g * 256u + e];
            if (o.has_bias) {
                v += bias[o.y_row + m];
            }
            v = activate(v, o.act);
            let out = (o.y_row - PART_BASE) * o.t_count + t * o.y_stride + PART_BASE + m;
            if (RESIDUAL) {
                v += y[out];
            }
            y[out] = v;
        }
    }
}

// Weights 4 (j % 8) .. 4 (j % 8) + 3 of row j / 8 of the K slice at k0 (j = lid + 128 i),
// decoded by weight4 (weights.wgsl); zero past the segment's rows. For F32.
fn fetch_w4(j: u32, m0: u32, rows: u32, w_first: u32, k: u32, k0: u32) -> vec4<f32> {
    let m = m0 + j / 8u;
    if (m >= rows) {
        return vec4<f32>(0.0);
    }
    return weight4(w_first + m * k + k0 + (j % 8u) * 4u);
}

// Whether W is fetched decoded (fetch_w4) rather than as raw words.
fn decoded_weights() -> bool {
    return DTYPE == DTYPE_F32;
}

// Whether W is fetched as raw halves (F16, BF16: 8 per vec4 of words).
fn half_weights() -> bool {
    return DTYPE == DTYPE_F16 || DTYPE == DTYPE_BF16;
}

// Input vec4 q (0-7) of the K slice at k0 of the input row starting at element `row`: inputs
// k0 + 4q .. + 3, or for the chunked formats the input vec4 of slot q of chunk k0 / 32.
fn input_slot(row: u32, k0: u32, q: u32) -> vec4<f32> {
    if (chunked()) {
        return x[row / 4u + chunk_x_vec4(k0 / CHUNK, q)];
    }
    return x[(row + k0 + q * 4u) / 4u];
}

// The raw chunk of row m at the K slice k0 (chunked formats; a zero chunk past the segment's rows).
fn fetch_chunk(m: u32, rows: u32, w_first: u32, k: u32, k0: u32) -> RawChunk {
    if (m >= rows) {
        return RawChunk(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), 0u);
    }
    return chunk_raw((w_first + m * k + k0) / CHUNK);
}

@compute @workgroup_size(128)
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
    if (uses_iq4_table()) {
        iq4_table_fill(lid);
        workgroupBarrier();
    }

    // Registers holding the next slice: X as 8 vec4 (token j / 8, k (j % 8) * 4 for
    // j = lid + 128 i, or slot j % 8 for the chunked formats); F16 and BF16 W as 4 vec4 words
    // (row j / 4, k (j % 4) * 8); Q8_0 W as 2 vec4 words of quants (row j / 2, k (j % 2) * 16)
    // and their block scales.
    var px: array<vec4<f32>, 8>;
    var pw: array<vec4<u32>, 4>;
    var pscale: vec2<f32>;
    // F32 W as 8 vec4 (see fetch_w4).
    var pwf: array<vec4<f32>, 8>;
    // The chunked formats' W: the raw chunk of row lid of the tile.
    var pch: RawChunk;

    // Fetch of slice 0 (the same code as in the loop below).
    for (var i = 0u; i < 8u; i++) {
        let j = lid + i * 128u;
        let t = t0 + j / 8u;
        px[i] = vec4<f32>(0.0);
        if (t < t_count) {
            px[i] = input_slot(x_first + t * k, 0u, j % 8u);
        }
    }
    if (decoded_weights()) {
        for (var i = 0u; i < 8u; i++) {
            pwf[i] = fetch_w4(lid + i * 128u, m0, rows, w_first, k, 0u);
        }
    } else if (chunked()) {
        pch = fetch_chunk(m0 + lid, rows, w_first, k, 0u);
    } else if (half_weights()) {
        for (var i = 0u; i < 4u; i++) {
            let j = lid + i * 128u;
            let m = m0 + j / 4u;
            pw[i] = vec4<u32>(0u);
            if (m < rows) {
                pw[i] = w[(w_first + m * k + (j % 4u) * 8u) / 8u];
            }
        }
    } else {
        for (var i = 0u; i < 2u; i++) {
            let j = lid + i * 128u;
            let m = m0 + j / 2u;
            pw[i] = vec4<u32>(0u);
            pscale[i] = 0.0;
            if (m < rows) {
                let e = w_first + m * k + (j % 2u) * 16u;
                pw[i] = w[e / 16u];
                pscale[i] = block_d(e / Q8_BLOCK);
            }
        }
    }

    let g = lid / LANES;
    let lane = lid % LANES;
    let gt = (g / 2u) * 64u; // the group's first token in the block
    let gm = (g % 2u) * 64u; // the group's first row in the block
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>();
    var c03 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>();
    var c13 = coop_mat16x16<f32, C>();
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c22 = coop_mat16x16<f32, C>();
    var c23 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();
    var c32 = coop_mat16x16<f32, C>();
    var c33 = coop_mat16x16<f32, C>();

    for (var k0 = 0u; k0 < k; k0 += BK) {
        // Stage the fetched slice (after every group has finished reading the previous one).
        workgroupBarrier();
        for (var i = 0u; i < 8u; i++) {
            let j = lid + i * 128u;
            let at = (j / 8u) * LD + (j % 8u) * 4u;
            let v = px[i];
            // hi: v with its mantissa cut to f16's 10 bits (exact in f16 within f16's range),
            // lo = v - hi exactly in f32. Bit masking, not a rounding round trip: the NVIDIA
            // driver folded v - f32(f16(v)) (also through pack/unpack) to zero, losing lo.
            let hi32 = select(v, bitcast<vec4<f32>>(bitcast<vec4<u32>>(v) & vec4<u32>(0xFFFFE000u)), vec4<bool>(SPLIT));
            let hi = vec4<f16>(hi32);
            xs[at] = hi.x;
            xs[at + 1u] = hi.y;
            xs[at + 2u] = hi.z;
            xs[at + 3u] = hi.w;
            if (SPLIT) {
                let lo = vec4<f16>(v - hi32);
                xs_lo[at] = lo.x;
                xs_lo[at + 1u] = lo.y;
                xs_lo[at + 2u] = lo.z;
                xs_lo[at + 3u] = lo.w;
            }
        }
        if (decoded_weights()) {
            for (var i = 0u; i < 8u; i++) {
                let j = lid + i * 128u;
                let at = (j / 8u) * LD + (j % 8u) * 4u;
                let v = vec4<f16>(pwf[i]);
                ws[at] = v.x;
                ws[at + 1u] = v.y;
                ws[at + 2u] = v.z;
                ws[at + 3u] = v.w;
            }
        } else if (chunked()) {
            // Row lid's chunk, slot q at halves 4q .. 4q + 3 (X is staged in slot order).
            let chunk = (w_first + (m0 + lid) * k + k0) / CHUNK;
            for (var q = 0u; q < 8u; q++) {
                let v = vec4<f16>(chunk_slot(pch, chunk, q));
                let at = lid * LD + 4u * q;
                ws[at] = v.x;
                ws[at + 1u] = v.y;
                ws[at + 2u] = v.z;
                ws[at + 3u] = v.w;
            }
        } else if (half_weights()) {
            for (var i = 0u; i < 4u; i++) {
                let j = lid + i * 128u;
                let at = (j / 4u) * LD + (j % 4u) * 8u;
                let wd = pw[i];
                var a: vec4<f16>;
                var b: vec4<f16>;
                if (DTYPE == DTYPE_BF16) {
                    a = vec4<f16>(bf16x4(wd.x, wd.y));
                    b = vec4<f16>(bf16x4(wd.z, wd.w));
                } else {
                    a = vec4<f16>(vec2<f16>(unpack2x16float(wd.x)), vec2<f16>(unpack2x16float(wd.y)));
                    b = vec4<f16>(vec2<f16>(unpack2x16float(wd.z)), vec2<f16>(unpack2x16float(wd.w)));
                }
                ws[at] = a.x;
                ws[at + 1u] = a.y;
                ws[at + 2u] = a.z;
                ws[at + 3u] = a.w;
                ws[at + 4u] = b.x;
                ws[at + 5u] = b.y;
                ws[at + 6u] = b.z;
                ws[at + 7u] = b.w;
            }
        } else {
            for (var i = 0u; i < 2u; i++) {
                let j = lid + i * 128u;
                let at = (j / 2u) * LD + (j % 2u) * 16u;
                let wd = pw[i];
                let sc = pscale[i];
                for (var q = 0u; q < 4u; q++) {
                    let v = vec4<f16>(q8_unpack(wd[q]) * sc);
                    ws[at + 4u * q] = v.x;
                    ws[at + 4u * q + 1u] = v.y;
                    ws[at + 4u * q + 2u] = v.z;
                    ws[at + 4u * q + 3u] = v.w;
                }
            }
        }
        workgroupBarrier();

        // Fetch the next slice while the tensor cores work on this one.
        let k1 = k0 + BK;
        if (k1 < k) {
            for (var i = 0u; i < 8u; i++) {
                let j = lid + i * 128u;
                let t = t0 + j / 8u;
                px[i] = vec4<f32>(0.0);
                if (t < t_count) {
                    px[i] = input_slot(x_first + t * k, k1, j % 8u);
                }
            }
            if (decoded_weights()) {
                for (var i = 0u; i < 8u; i++) {
                    pwf[i] = fetch_w4(lid + i * 128u, m0, rows, w_first, k, k1);
                }
            } else if (chunked()) {
                pch = fetch_chunk(m0 + lid, rows, w_first, k, k1);
            } else if (half_weights()) {
                for (var i = 0u; i < 4u; i++) {
                    let j = lid + i * 128u;
                    let m = m0 + j / 4u;
                    pw[i] = vec4<u32>(0u);
                    if (m < rows) {
                        pw[i] = w[(w_first + m * k + k1 + (j % 4u) * 8u) / 8u];
                    }
                }
            } else {
                for (var i = 0u; i < 2u; i++) {
                    let j = lid + i * 128u;
                    let m = m0 + j / 2u;
                    pw[i] = vec4<u32>(0u);
                    pscale[i] = 0.0;
                    if (m < rows) {
                        let e = w_first + m * k + k1 + (j % 2u) * 16u;
                        pw[i] = w[e / 16u];
                        pscale[i] = block_d(e / Q8_BLOCK);
                    }
                }
            }
        }

        for (var kk = 0u; kk < BK; kk += 16u) {
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&ws[(gm + 0u) * LD + kk], LD);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&ws[(gm + 16u) * LD + kk], LD);
            let b2 = coopLoad<coop_mat16x16<f16, B>>(&ws[(gm + 32u) * LD + kk], LD);
            let b3 = coopLoad<coop_mat16x16<f16, B>>(&ws[(gm + 48u) * LD + kk], LD);
            var a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(gt + 0u) * LD + kk], LD);
            var a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(gt + 16u) * LD + kk], LD);
            var a2 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(gt + 32u) * LD + kk], LD);
            var a3 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(gt + 48u) * LD + kk], LD);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c02 = coopMultiplyAdd(a0, b2, c02);
            c03 = coopMultiplyAdd(a0, b3, c03);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            c12 = coopMultiplyAdd(a1, b2, c12);
            c13 = coopMultiplyAdd(a1, b3, c13);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            c22 = coopMultiplyAdd(a2, b2, c22);
            c23 = coopMultiplyAdd(a2, b3, c23);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
            c32 = coopMultiplyAdd(a3, b2, c32);
            c33 = coopMultiplyAdd(a3, b3, c33);
            if (SPLIT) {
                a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs_lo[(gt + 0u) * LD + kk], LD);
                a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs_lo[(gt + 16u) * LD + kk], LD);
                a2 = coopLoadT<coop_mat16x16<f16, A>>(&xs_lo[(gt + 32u) * LD + kk], LD);
                a3 = coopLoadT<coop_mat16x16<f16, A>>(&xs_lo[(gt + 48u) * LD + kk], LD);
                c00 = coopMultiplyAdd(a0, b0, c00);
                c01 = coopMultiplyAdd(a0, b1, c01);
                c02 = coopMultiplyAdd(a0, b2, c02);
                c03 = coopMultiplyAdd(a0, b3, c03);
                c10 = coopMultiplyAdd(a1, b0, c10);
                c11 = coopMultiplyAdd(a1, b1, c11);
                c12 = coopMultiplyAdd(a1, b2, c12);
                c13 = coopMultiplyAdd(a1, b3, c13);
                c20 = coopMultiplyAdd(a2, b0, c20);
                c21 = coopMultiplyAdd(a2, b1, c21);
                c22 = coopMultiplyAdd(a2, b2, c22);
                c23 = coopMultiplyAdd(a2, b3, c23);
                c30 = coopMultiplyAdd(a3, b0, c30);
                c31 = coopMultiplyAdd(a3, b1, c31);
                c32 = coopMultiplyAdd(a3, b2, c32);
                c33 = coopMultiplyAdd(a3, b3, c33);
            }
        }
    }

    let o = Out(
        t_count,
        rows,
        seg_pick(s, SEG_ACT0, SEG_ACT1, SEG_ACT2, SEG_ACT3),
        ((BIAS_MASK >> s) & 1u) == 1u,
        seg_pick(s, SEG_YOFF0, SEG_YOFF1, SEG_YOFF2, SEG_YOFF3) + PART_BASE,
        seg_pick(s, SEG_M0, SEG_M1, SEG_M2, SEG_M3),
    );
    let tt = t0 + gt;
    let mm = m0 + gm;
    store_tile(c00, g, lane, tt, mm, o);
    store_tile(c01, g, lane, tt, mm + 16u, o);
    store_tile(c02, g, lane, tt, mm + 32u, o);
    store_tile(c03, g, lane, tt, mm + 48u, o);
    store_tile(c10, g, lane, tt + 16u, mm, o);
    store_tile(c11, g, lane, tt + 16u, mm + 16u, o);
    store_tile(c12, g, lane, tt + 16u, mm + 32u, o);
    store_tile(c13, g, lane, tt + 16u, mm + 48u, o);
    store_tile(c20, g, lane, tt + 32u, mm, o);
    store_tile(c21, g, lane, tt + 32u, mm + 16u, o);
    store_tile(c22, g, lane, tt + 32u, mm + 32u, o);
    store_tile(c23, g, lane, tt + 32u, mm + 48u, o);
    store_tile(c30, g, lane, tt + 48u, mm, o);
    store_tile(c31, g, lane, tt + 48u, mm + 16u, o);
    store_tile(c32, g, lane, tt + 48u, mm + 32u, o);
    store_tile(c33, g, lane, tt + 48u, mm + 48u, o);
}
