// The weight bindings, the weight format override and one decoder per format, shared by every
// kernel that reads a weight matrix or table (matvec, matmul, matmul_coop, embedding; composed
// after common.wgsl by shader_check::COMPOSED). Layouts: src/formats.rs (docs/kernels.md).
//
// GPU layout of a weight in a block format (Q4_0 ... IQ4_XS): the blocks' bodies one after another
// (flat block order = row-major), each a whole number of u32 words, then the f16 `d` halves two per
// word (flat block b at half D_HALF0 + b of `w_d`, low half for even). A body is the ggml block
// without its 2-byte f16 `d` where the block's size is not a multiple of 4 bytes (Q4_0, Q5_0,
// Q8_0, IQ4_NL: `d` leads the block; Q3_K, Q6_K: `d` ends it); every other block is stored
// whole, `d` included, and has no `d` region. F32 is stored as its bit patterns; F16 and BF16 as
// halves two per word (element e in word e / 2, low half for even e).
//
// The decoders compute what ggml_quants::dequantize computes, with the same float operations in
// the same order (d·sc·q − dmin·m as (d·sc)·q − (dmin·m), ...).

// Format ids (the DTYPE override; formats::WeightFormat::shader_id).
const DTYPE_F32: u32 = 0u;
const DTYPE_F16: u32 = 1u;
const DTYPE_Q8_0: u32 = 2u;
const DTYPE_BF16: u32 = 3u;
const DTYPE_Q4_0: u32 = 4u;
const DTYPE_Q4_1: u32 = 5u;
const DTYPE_Q5_0: u32 = 6u;
const DTYPE_Q5_1: u32 = 7u;
const DTYPE_Q2_K: u32 = 8u;
const DTYPE_Q3_K: u32 = 9u;
const DTYPE_Q4_K: u32 = 10u;
const DTYPE_Q5_K: u32 = 11u;
const DTYPE_Q6_K: u32 = 12u;
const DTYPE_IQ4_NL: u32 = 13u;
const DTYPE_IQ4_XS: u32 = 14u;

const Q8_BLOCK: u32 = 32u;

override DTYPE: u32;
// Half of `w_d` holding the `d` of flat block 0 of this binding (formats with a `d` region).
override D_HALF0: u32 = 0u;

// The weight (a matrix, one row block of it, or one row part of an embedding table): block
// bodies, F32 words or half pairs. In the matrix kernels also the `d` region after the bodies.
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
// Where the blocks' f16 `d` are read: the weight binding again in the matrix kernels, the table
// part's `d` range in the embedding.
@group(0) @binding(6) var<storage, read> w_d: array<u32>;

// ggml's kvalues_iq4nl.
const IQ4_VALUES = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                  1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

// ---- raw access -------------------------------------------------------------------------------

// Word i of the weight binding.
fn w_word(i: u32) -> u32 {
    return w[i / 4u][i % 4u];
}

// Byte i (0..255) of the words starting at word `at`.
fn w_byte(at: u32, i: u32) -> u32 {
    return (w_word(at + i / 4u) >> (8u * (i % 4u))) & 0xffu;
}

// Element e of an F16 matrix stored as u32 pairs.
fn f16_elem(word: u32, e: u32) -> f32 {
    let pair = unpack2x16float(word);
    return select(pair.x, pair.y, (e & 1u) == 1u);
}

// The f16 `d` of flat block b (formats with a `d` region).
fn block_d(b: u32) -> f32 {
    let h = D_HALF0 + b;
    return f16_elem(w_d[h / 2u], h);
}

// The four BF16 halves of words a and c as floats (a's low half first).
fn bf16x4(a: u32, c: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, c << 16u, c & 0xffff0000u));
}

// Four signed bytes of a Q8_0 quant word as floats. (Building the floats from the bytes with
// the 2^23 mantissa trick instead of int-to-float conversions measured 2% slower decode on an
// H200: docs/perf.md.)
fn q8_unpack(word: u32) -> vec4<f32> {
    return vec4<f32>(unpack4xI8(word));
}

// The low (or high) nibbles of a word's four bytes.
fn nibbles4(word: u32, high: bool) -> vec4<u32> {
    return unpack4xU8((word >> select(0u, 4u, high)) & 0x0f0f0f0fu);
}

// The two-bit fields at bit `shift` of a word's four bytes.
fn crumbs4(word: u32, shift: u32) -> vec4<u32> {
    return unpack4xU8((word >> shift) & 0x03030303u);
}

// Bit `bit` of a word's four bytes.
fn bits_of_bytes4(word: u32, bit: u32) -> vec4<u32> {
    return unpack4xU8((word >> bit) & 0x01010101u);
}

// Bits i .. i + 3 of `bits`.
fn bits4(bits: u32, i: u32) -> vec4<u32> {
    return (vec4<u32>(bits) >> (vec4<u32>(i) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
}

fn iq4_values4(q: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(IQ4_VALUES[q.x], IQ4_VALUES[q.y], IQ4_VALUES[q.z], IQ4_VALUES[q.w]);
}

// Word (within a 16-byte group of 32 packed 4-bit values: value j < 16 in the low nibble of byte
// j, value j + 16 in its high nibble) holding values j .. j + 3, and whether they are the high
// nibbles.
fn nibble_word(j: u32) -> u32 {
    return (j % 16u) / 4u;
}

// ---- 32-value blocks ----------------------------------------------------------------------------

// Q4_0: body 4 words of nibbles; x = d·(q − 8).
fn q4_0_weight4(e: u32) -> vec4<f32> {
    let b = e / 32u;
    let j = e % 32u;
    let q = nibbles4(w_word(4u * b + nibble_word(j)), j >= 16u);
    return vec4<f32>(vec4<i32>(q) - vec4<i32>(8)) * block_d(b);
}

// Q4_1: 5 words: d | m, 4 words of nibbles; x = d·q + m.
fn q4_1_weight4(e: u32) -> vec4<f32> {
    let b = e / 32u;
    let j = e % 32u;
    let dm = unpack2x16float(w_word(5u * b));
    let q = nibbles4(w_word(5u * b + 1u + nibble_word(j)), j >= 16u);
    return vec4<f32>(q) * dm.x + dm.y;
}

// Q5_0: body 5 words: qh (bit j = fifth bit of value j), 4 words of nibbles; x = d·(q − 16).
fn q5_0_weight4(e: u32) -> vec4<f32> {
    let b = e / 32u;
    let j = e % 32u;
    let at = 5u * b;
    let q = nibbles4(w_word(at + 1u + nibble_word(j)), j >= 16u) | (bits4(w_word(at), j) << vec4<u32>(4u));
    return vec4<f32>(vec4<i32>(q) - vec4<i32>(16)) * block_d(b);
}

// Q5_1: 6 words: d | m, qh, 4 words of nibbles; x = d·q + m.
fn q5_1_weight4(e: u32) -> vec4<f32> {
    let b = e / 32u;
    let j = e % 32u;
    let at = 6u * b;
    let dm = unpack2x16float(w_word(at));
    let q = nibbles4(w_word(at + 2u + nibble_word(j)), j >= 16u) | (bits4(w_word(at + 1u), j) << vec4<u32>(4u));
    return vec4<f32>(q) * dm.x + dm.y;
}

// Q8_0: body 8 words of signed bytes; x = q·d.
fn q8_0_weight4(e: u32) -> vec4<f32> {
    return q8_unpack(w_word(e / 4u)) * block_d(e / 32u);
}

// IQ4_NL: body 4 words of nibbles (table indices); x = d·kvalues[q].
fn iq4_nl_weight4(e: u32) -> vec4<f32> {
    let b = e / 32u;
    let j = e % 32u;
    return block_d(b) * iq4_values4(nibbles4(w_word(4u * b + nibble_word(j)), j >= 16u));
}

// ---- 256-value blocks ---------------------------------------------------------------------------

// Q2_K: 21 words: scales[16] (scale | min << 4 per 16 values), qs[64] (value j at bit
// 2·((j % 128) / 32) of byte (j / 128)·32 + j % 32), d | dmin; x = (d·sc)·q − (dmin·m).
fn q2_k_weight4(e: u32) -> vec4<f32> {
    let b = e / 256u;
    let j = e % 256u;
    let at = 21u * b;
    let dm = unpack2x16float(w_word(at + 20u));
    let sc = w_byte(at, j / 16u);
    let dl = dm.x * f32(sc & 0xfu);
    let ml = dm.y * f32(sc >> 4u);
    let q = crumbs4(w_word(at + 4u + ((j / 128u) * 32u + j % 32u) / 4u), 2u * ((j % 128u) / 32u));
    return dl * vec4<f32>(q) - ml;
}

// Q3_K: body 27 words: hmask[32] (bit j / 32 of byte j % 32: the value's high bit), qs[64] (as
// Q2_K), scales[12] (16 six-bit scales); x = (d·(sc − 32))·(q − 4·(1 − h)).
fn q3_k_weight4(e: u32) -> vec4<f32> {
    let b = e / 256u;
    let j = e % 256u;
    let at = 27u * b;
    let s = j / 16u;
    let low = (w_byte(at + 24u, s % 8u) >> (4u * (s / 8u))) & 0xfu;
    let high = (w_byte(at + 24u, 8u + s % 4u) >> (2u * (s / 4u))) & 3u;
    let dl = block_d(b) * f32(i32(low | (high << 4u)) - 32);
    let q2 = crumbs4(w_word(at + 8u + ((j / 128u) * 32u + j % 32u) / 4u), 2u * ((j % 128u) / 32u));
    let h = bits_of_bytes4(w_word(at + (j % 32u) / 4u), j / 32u);
    let q = vec4<i32>(q2) - 4 * (vec4<i32>(1) - vec4<i32>(h));
    return dl * vec4<f32>(q);
}

// Scale and min of sub-block s of a Q4_K/Q5_K block whose 12 scale bytes start at word `at`
// (ggml's get_scale_min_k4).
fn k4_scale_min(at: u32, s: u32) -> vec2<u32> {
    if (s < 4u) {
        return vec2<u32>(w_byte(at, s) & 63u, w_byte(at, s + 4u) & 63u);
    }
    let hi = w_byte(at, s + 4u);
    return vec2<u32>((hi & 0xfu) | ((w_byte(at, s - 4u) >> 6u) << 4u), (hi >> 4u) | ((w_byte(at, s) >> 6u) << 4u));
}

// Q4_K: 36 words: d | dmin, scales[12], qs[128] (value j in byte (j / 64)·32 + j % 32, low
// nibble when j % 64 < 32); x = (d·sc)·q − (dmin·m) per 32 values.
fn q4_k_weight4(e: u32) -> vec4<f32> {
    let b = e / 256u;
    let j = e % 256u;
    let at = 36u * b;
    let dm = unpack2x16float(w_word(at));
    let sm = k4_scale_min(at + 1u, j / 32u);
    let q = nibbles4(w_word(at + 4u + ((j / 64u) * 32u + j % 32u) / 4u), j % 64u >= 32u);
    return (dm.x * f32(sm.x)) * vec4<f32>(q) - dm.y * f32(sm.y);
}

// Q5_K: 44 words: d | dmin, scales[12], qh[32] (bit j / 32 of byte j % 32: the fifth bit),
// qs[128] as Q4_K; x = (d·sc)·q − (dmin·m).
fn q5_k_weight4(e: u32) -> vec4<f32> {
    let b = e / 256u;
    let j = e % 256u;
    let at = 44u * b;
    let dm = unpack2x16float(w_word(at));
    let sm = k4_scale_min(at + 1u, j / 32u);
    let low = nibbles4(w_word(at + 12u + ((j / 64u) * 32u + j % 32u) / 4u), j % 64u >= 32u);
    let q = low | (bits_of_bytes4(w_word(at + 4u + (j % 32u) / 4u), j / 32u) << vec4<u32>(4u));
    return (dm.x * f32(sm.x)) * vec4<f32>(q) - dm.y * f32(sm.y);
}

// Q6_K: body 52 words: ql[128], qh[64], scales[16] (int8 per 16 values). Value j (h = j / 128,
// g = (j % 128) / 32, i = j % 32): low 4 bits in ql[64h + 32(g % 2) + i] (high nibble for g ≥ 2),
// top 2 bits at bit 2g of qh[32h + i]; x = (d·sc)·(q − 32).
fn q6_k_weight4(e: u32) -> vec4<f32> {
    let b = e / 256u;
    let j = e % 256u;
    let at = 52u * b;
    let h = j / 128u;
    let g = (j % 128u) / 32u;
    let i = j % 32u;
    let low = nibbles4(w_word(at + (64u * h + 32u * (g % 2u) + i) / 4u), g >= 2u);
    let high = crumbs4(w_word(at + 32u + (32u * h + i) / 4u), 2u * g);
    let q = vec4<i32>(low | (high << vec4<u32>(4u))) - vec4<i32>(32);
    let sc = unpack4xI8(w_word(at + 48u + j / 64u))[(j / 16u) % 4u];
    return (block_d(b) * f32(sc)) * vec4<f32>(q);
}

// IQ4_XS: 34 words: d | scales_h, scales_l[4], qs[128] (16 bytes per 32 values, packed as
// IQ4_NL). Sub-block s's scale: nibble s of scales_l, top bits 2s of scales_h;
// x = (d·(ls − 32))·kvalues[q].
fn iq4_xs_weight4(e: u32) -> vec4<f32> {
    let b = e / 256u;
    let j = e % 256u;
    let at = 34u * b;
    let head = w_word(at);
    let s = j / 32u;
    let ls = ((w_word(at + 1u) >> (4u * s)) & 0xfu) | (((head >> (16u + 2u * s)) & 3u) << 4u);
    let dl = unpack2x16float(head).x * f32(i32(ls) - 32);
    let q = nibbles4(w_word(at + 2u + 4u * s + nibble_word(j % 32u)), j % 32u >= 16u);
    return dl * iq4_values4(q);
}

// ---- any format ---------------------------------------------------------------------------------

// Weights e .. e + 3 of the binding (e a multiple of 4; rows of block formats hold whole blocks).
fn weight4(e: u32) -> vec4<f32> {
    switch DTYPE {
        case DTYPE_F32: {
            return bitcast<vec4<f32>>(w[e / 4u]);
        }
        case DTYPE_F16: {
            return vec4<f32>(unpack2x16float(w_word(e / 2u)), unpack2x16float(w_word(e / 2u + 1u)));
        }
        case DTYPE_BF16: {
            return bf16x4(w_word(e / 2u), w_word(e / 2u + 1u));
        }
        case DTYPE_Q8_0: {
            return q8_0_weight4(e);
        }
        case DTYPE_Q4_0: {
            return q4_0_weight4(e);
        }
        case DTYPE_Q4_1: {
            return q4_1_weight4(e);
        }
        case DTYPE_Q5_0: {
            return q5_0_weight4(e);
        }
        case DTYPE_Q5_1: {
            return q5_1_weight4(e);
        }
        case DTYPE_Q2_K: {
            return q2_k_weight4(e);
        }
        case DTYPE_Q3_K: {
            return q3_k_weight4(e);
        }
        case DTYPE_Q4_K: {
            return q4_k_weight4(e);
        }
        case DTYPE_Q5_K: {
            return q5_k_weight4(e);
        }
        case DTYPE_Q6_K: {
            return q6_k_weight4(e);
        }
        case DTYPE_IQ4_NL: {
            return iq4_nl_weight4(e);
        }
        default: {
            return iq4_xs_weight4(e);
        }
    }
}

// Element e of the binding, at any alignment.
fn weight_at(e: u32) -> f32 {
    if (DTYPE == DTYPE_F32) {
        return bitcast<f32>(w_word(e));
    }
    if (DTYPE == DTYPE_F16) {
        return f16_elem(w_word(e / 2u), e);
    }
    if (DTYPE == DTYPE_BF16) {
        return bitcast<f32>(select(w_word(e / 2u) << 16u, w_word(e / 2u) & 0xffff0000u, (e & 1u) == 1u));
    }
    if (DTYPE == DTYPE_Q8_0) {
        return f32(unpack4xI8(w_word(e / 4u))[e % 4u]) * block_d(e / Q8_BLOCK);
    }
    return weight4(e & ~3u)[e & 3u];
}

// ---- the fast paths' helpers (F16, BF16 and Q8_0 vec4 loads; the other block formats:
// weight_chunks.wgsl) ------------------------------------------------------------------------------

// Dot product of 8 F16 weights (a vec4 of words) with 8 inputs.
fn dot_f16x8(wd: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>) -> f32 {
    let a = vec4<f32>(unpack2x16float(wd.x), unpack2x16float(wd.y));
    let b = vec4<f32>(unpack2x16float(wd.z), unpack2x16float(wd.w));
    return dot(a, x0) + dot(b, x1);
}

// Dot product of 8 BF16 weights (a vec4 of words) with 8 inputs.
fn dot_bf16x8(wd: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>) -> f32 {
    return dot(bf16x4(wd.x, wd.y), x0) + dot(bf16x4(wd.z, wd.w), x1);
}

// Unscaled dot product of 16 Q8_0 quants (a vec4 of words) with 16 inputs.
fn dot_q8x16(wd: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> f32 {
    return dot(q8_unpack(wd.x), x0) + dot(q8_unpack(wd.y), x1) + dot(q8_unpack(wd.z), x2) + dot(q8_unpack(wd.w), x3);
}
