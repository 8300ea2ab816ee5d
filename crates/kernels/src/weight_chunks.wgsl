// The matrix kernels' fast path for the block formats other than Q8_0 (Q4_0, Q4_1, Q5_0, Q5_1,
// Q2_K ... Q6_K, IQ4_NL, IQ4_XS): a weight row is read in *chunks* of 32 weights, each one
// thread's work. A chunk is a 32-value block, or one eighth of a 256-value block; its raw words
// are loaded at once (vec4<u32> loads where the GPU layout keeps them 16-byte aligned: Q4_0,
// IQ4_NL, Q4_K, Q5_K, Q6_K; u32 loads of consecutive words otherwise), held in registers
// (`RawChunk`, so that the loads of the next slice stay in flight while the current one is
// used), and decoded from registers four weights at a time (`chunk_slot`), the block's scales
// from the same registers. Composed after weights.wgsl (whose layouts, bindings and word
// access it uses) into the matvec, matmul and matmul_coop modules (shader_check::COMPOSED).
//
// A chunk's 32 weights are 8 *slots* of 4 weights, each slot multiplying 4 consecutive inputs
// (one input vec4): chunk_x_vec4 says which, chunk_slot_of_x is its inverse. The slots follow
// the quants' byte order, so the inputs of one chunk are not always consecutive (Q4_K: two runs
// of 16; Q2_K, Q3_K: four runs of 8); a kernel reads or stages the inputs in slot order and
// multiplies them with the decoded slots (the dot product does not depend on the order).
// Consecutive chunks of a row are consecutive bytes of the layout (apart from the 256-value
// blocks' scale words), so the threads of a subgroup taking consecutive chunks read
// consecutive bytes.
//
// Every decoder computes what ggml_quants::dequantize computes for each weight: the same float
// operations in the same order (as the generic decoders of weights.wgsl), or, for the
// (q − offset)·scale formats, one fused multiply-add that rounds the same exact value once
// (offset_bytes_f32).

// Weights per chunk and slots per chunk.
const CHUNK: u32 = 32u;
const CHUNK_SLOTS: u32 = 8u;

// How chunk_slot turns quant bytes into floats: integer-to-float conversions (false), or
// through the float's mantissa (true): the bits of 2^23 + b, minus 2^23, exact for any byte b,
// an integer and a float operation per value instead of a conversion, which NVIDIA GPUs run at
// a quarter of the integer rate (16 per clock and SM on an H100). For Q8_0 the conversions
// measured faster (docs/perf.md); for 4-bit chunks (twice the values per byte) not measured yet:
// matvec's Geometry::magic_bytes sets it, decode_sweep compares.
override MAGIC_BYTES: bool = false;

// ggml's kvalues_iq4nl in workgroup memory (IQ4_NL, IQ4_XS): the entry points fill it with
// iq4_table_fill before decoding (a lookup in workgroup memory, where the threads' distinct
// indices fall in distinct banks, instead of a dynamically indexed constant array). Only
// iq4_slot reads it, so a kernel that never calls iq4_slot or chunk_slot (matmul, whose
// workgroup memory is full) does not hold it.
var<workgroup> iq4_table: array<f32, 16>;

// Whether DTYPE is decoded by chunks (every block format but Q8_0, which has its own path).
fn chunked() -> bool {
    return DTYPE >= DTYPE_Q4_0;
}

// Whether DTYPE looks its values up in iq4_table.
fn uses_iq4_table() -> bool {
    return DTYPE == DTYPE_IQ4_NL || DTYPE == DTYPE_IQ4_XS;
}

// Fills iq4_table (invocations 0..15 of the workgroup); call from every entry that decodes an
// IQ4 format, followed by a workgroup barrier.
fn iq4_table_fill(lid: u32) {
    if (lid < 16u) {
        iq4_table[lid] = IQ4_VALUES[lid];
    }
}

fn iq4_table4(q: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(iq4_table[q.x], iq4_table[q.y], iq4_table[q.z], iq4_table[q.w]);
}

// ---- slots and inputs -------------------------------------------------------------------------

// The input vec4 (counted from the row's first input) that slot j of the row's chunk c
// multiplies. For 256-value blocks, chunk p = c % 8 of its block: Q4_K/Q5_K: quant bytes
// 16p .. 16p + 15 (low nibbles: values 64(p/2) + 16(p%2) + 0..15, high nibbles: 32 more); Q6_K:
// ql bytes 16p .. 16p + 15 (values 128(p/4) + 32((p%4)/2) + 16(p%2) + 0..15, high nibbles 64
// more); Q2_K/Q3_K: quant bytes 32(p/4) + 8(p%4) .. + 7 (values 128(p/4) + 32s + 8(p%4) + 0..7
// for the four shifts s); IQ4_XS: sub-block p. A 32-value block is one chunk of 8 vec4s.
fn chunk_x_vec4(c: u32, j: u32) -> u32 {
    let base = 64u * (c / 8u);
    let p = c % 8u;
    switch DTYPE {
        case DTYPE_Q4_K, DTYPE_Q5_K: {
            return base + 16u * (p / 2u) + 4u * (p % 2u) + 8u * (j / 4u) + j % 4u;
        }
        case DTYPE_Q6_K: {
            return base + 32u * (p / 4u) + 8u * ((p % 4u) / 2u + 2u * (j / 4u)) + 4u * (p % 2u) + j % 4u;
        }
        case DTYPE_Q2_K, DTYPE_Q3_K: {
            return base + 32u * (p / 4u) + 8u * (j / 2u) + 2u * (p % 4u) + j % 2u;
        }
        default: {
            return 8u * c + j;
        }
    }
}

// The chunk (x) and slot (y) that input vec4 q of a row feeds: the inverse of chunk_x_vec4.
fn chunk_slot_of_x(q: u32) -> vec2<u32> {
    let base = 8u * (q / 64u);
    let r = q % 64u;
    switch DTYPE {
        case DTYPE_Q4_K, DTYPE_Q5_K: {
            return vec2<u32>(base + 2u * (r / 16u) + (r % 8u) / 4u, 4u * ((r % 16u) / 8u) + r % 4u);
        }
        case DTYPE_Q6_K: {
            let g = (r % 32u) / 8u;
            return vec2<u32>(base + 4u * (r / 32u) + 2u * (g % 2u) + (r % 8u) / 4u, 4u * (g / 2u) + r % 4u);
        }
        case DTYPE_Q2_K, DTYPE_Q3_K: {
            return vec2<u32>(base + 4u * (r / 32u) + (r % 8u) / 2u, 2u * ((r % 32u) / 8u) + r % 2u);
        }
        default: {
            return vec2<u32>(q / 8u, q % 8u);
        }
    }
}

// ---- raw chunks -------------------------------------------------------------------------------

// The words of one chunk, as loaded (which field holds what: chunk_raw).
struct RawChunk {
    a: vec4<u32>,
    b: vec4<u32>,
    c: vec4<u32>,
    s: u32,
}

// Words i .. i + 3 of the weight binding (any alignment).
fn words4(i: u32) -> vec4<u32> {
    return vec4<u32>(w_word(i), w_word(i + 1u), w_word(i + 2u), w_word(i + 3u));
}

// The word of the `d` region holding the f16 `d` of flat block b (formats with a `d` region).
fn d_word(b: u32) -> u32 {
    return w_d[(D_HALF0 + b) / 2u];
}

// The `d` of flat block b from its word.
fn d_of(word: u32, b: u32) -> f32 {
    return f16_elem(word, D_HALF0 + b);
}

// Loads flat chunk g of the binding (g = flat block · chunks per block + chunk in the block).
fn chunk_raw(g: u32) -> RawChunk {
    var r = RawChunk(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), 0u);
    let b = g / 8u; // the 256-value block
    let p = g % 8u; // the chunk in it
    switch DTYPE {
        case DTYPE_Q4_0, DTYPE_IQ4_NL: {
            // a: the 16 quant bytes (body = vec4 g); s: the `d` word.
            r.a = w[g];
            r.s = d_word(g);
        }
        case DTYPE_Q4_1: {
            // a: quants; s: d | m.
            r.a = words4(5u * g + 1u);
            r.s = w_word(5u * g);
        }
        case DTYPE_Q5_0: {
            // a: quants; b.x: qh; s: the `d` word.
            r.a = words4(5u * g + 1u);
            r.b.x = w_word(5u * g);
            r.s = d_word(g);
        }
        case DTYPE_Q5_1: {
            // a: quants; b.x: qh; s: d | m.
            r.a = words4(6u * g + 2u);
            r.b.x = w_word(6u * g + 1u);
            r.s = w_word(6u * g);
        }
        case DTYPE_Q2_K: {
            // a.xy: the chunk's two quant words, a.zw: the scale words of its half; s: d | dmin.
            let at = 21u * b;
            let q = at + 4u + 8u * (p / 4u) + 2u * (p % 4u);
            r.a = vec4<u32>(w_word(q), w_word(q + 1u), w_word(at + 2u * (p / 4u)), w_word(at + 2u * (p / 4u) + 1u));
            r.s = w_word(at + 20u);
        }
        case DTYPE_Q3_K: {
            // a.xy: quant words, a.zw: hmask words; b.xyz: the 12 scale bytes; s: the `d` word.
            let at = 27u * b;
            let q = at + 8u + 8u * (p / 4u) + 2u * (p % 4u);
            r.a = vec4<u32>(w_word(q), w_word(q + 1u), w_word(at + 2u * (p % 4u)), w_word(at + 2u * (p % 4u) + 1u));
            r.b = vec4<u32>(w_word(at + 24u), w_word(at + 25u), w_word(at + 26u), 0u);
            r.s = d_word(b);
        }
        case DTYPE_Q4_K: {
            // a: d | dmin and the 12 scale bytes (vec4 0 of the block); b: quant bytes 16p ...
            r.a = w[9u * b];
            r.b = w[9u * b + 1u + p];
        }
        case DTYPE_Q5_K: {
            // a: as Q4_K; b: quant bytes 16p ...; c: qh bytes 16(p % 2) ...
            r.a = w[11u * b];
            r.b = w[11u * b + 3u + p];
            r.c = w[11u * b + 1u + p % 2u];
        }
        case DTYPE_Q6_K: {
            // a: ql bytes 16p ...; b: the matching qh bytes; c: the 16 int8 scales; s: `d` word.
            r.a = w[13u * b + p];
            r.b = w[13u * b + 8u + 2u * (p / 4u) + p % 2u];
            r.c = w[13u * b + 12u];
            r.s = d_word(b);
        }
        default: {
            // IQ4_XS. a: sub-block p's quants; s: d | scales_h; b.x: scales_l.
            let at = 34u * b;
            r.a = words4(at + 2u + 4u * p);
            r.s = w_word(at);
            r.b.x = w_word(at + 1u);
        }
    }
    return r;
}

// ---- decoding -----------------------------------------------------------------------------------

// The four bytes of a packed word as floats.
fn bytes_f32(packed: u32) -> vec4<f32> {
    if (MAGIC_BYTES) {
        let b = (vec4<u32>(packed) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
        return bitcast<vec4<f32>>(b | vec4<u32>(0x4b000000u)) - 8388608.0;
    }
    return vec4<f32>(unpack4xU8(packed));
}

// (b − offset)·scale for the four bytes b of a packed word, as one fused multiply-add per byte:
// b·scale − offset·scale, whose product offset·scale (a power of two times scale) is exact, is
// the exact (b − offset)·scale rounded once, as ggml's (b − offset)·scale.
fn offset_bytes_f32(packed: u32, offset: f32, scale: f32) -> vec4<f32> {
    return fma(bytes_f32(packed), vec4<f32>(scale), vec4<f32>(-offset * scale));
}

// The low (or high) nibbles of a word's four bytes, packed as bytes.
fn nibble_bytes(word: u32, high: bool) -> u32 {
    return (word >> select(0u, 4u, high)) & 0x0f0f0f0fu;
}

// Bits n .. n + 3 of `bits` as bit 4 of four bytes (the fifth bits of Q5_0/Q5_1).
fn fifth_bits(bits: u32, n: u32) -> u32 {
    return ((((bits >> n) & 0xfu) * 0x00204081u) & 0x01010101u) << 4u;
}

// Scale and min of sub-block `sub` of a Q4_K/Q5_K block from its first vec4 (h.yzw: the 12
// scale bytes; ggml's get_scale_min_k4), without branching on `sub`.
fn k4_scale_min_of(h: vec4<u32>, sub: u32) -> vec2<f32> {
    let t = 8u * (sub % 4u);
    let lo = vec2<u32>((h.y >> t) & 63u, (h.z >> t) & 63u);
    let hi = vec2<u32>(((h.w >> t) & 0xfu) | ((h.y >> t >> 2u) & 0x30u),
                       ((h.w >> t >> 4u) & 0xfu) | ((h.z >> t >> 2u) & 0x30u));
    return vec2<f32>(select(lo, hi, sub >= 4u));
}

// Weights 4j .. 4j + 3 of flat chunk g from its raw words (slot j: chunk_x_vec4 says which
// inputs they multiply), in any chunked format.
fn chunk_slot(r: RawChunk, g: u32, j: u32) -> vec4<f32> {
    if (uses_iq4_table()) {
        return iq4_slot(r, g, j);
    }
    return table_free_slot(r, g, j);
}

// chunk_slot for IQ4_NL and IQ4_XS (iq4_table must be filled).
fn iq4_slot(r: RawChunk, g: u32, j: u32) -> vec4<f32> {
    let q = unpack4xU8(nibble_bytes(r.a[j % 4u], j >= 4u));
    if (DTYPE == DTYPE_IQ4_NL) {
        return d_of(r.s, g) * iq4_table4(q);
    }
    // IQ4_XS: sub-block p's scale: nibble p of scales_l, bits 2p of scales_h.
    let p = g % 8u;
    let ls = ((r.b.x >> (4u * p)) & 0xfu) | (((r.s >> (16u + 2u * p)) & 3u) << 4u);
    let dl = unpack2x16float(r.s).x * f32(i32(ls) - 32);
    return dl * iq4_table4(q);
}

// chunk_slot for the chunked formats other than IQ4_NL and IQ4_XS (zeros for those).
fn table_free_slot(r: RawChunk, g: u32, j: u32) -> vec4<f32> {
    let p = g % 8u;
    let i = j % 4u;
    let high = j >= 4u;
    switch DTYPE {
        case DTYPE_Q4_0: {
            return offset_bytes_f32(nibble_bytes(r.a[i], high), 8.0, d_of(r.s, g));
        }
        case DTYPE_Q4_1: {
            let dm = unpack2x16float(r.s);
            return bytes_f32(nibble_bytes(r.a[i], high)) * dm.x + dm.y;
        }
        case DTYPE_Q5_0: {
            let q = nibble_bytes(r.a[i], high) | fifth_bits(r.b.x, 4u * i + select(0u, 16u, high));
            return offset_bytes_f32(q, 16.0, d_of(r.s, g));
        }
        case DTYPE_Q5_1: {
            let dm = unpack2x16float(r.s);
            let q = nibble_bytes(r.a[i], high) | fifth_bits(r.b.x, 4u * i + select(0u, 16u, high));
            return bytes_f32(q) * dm.x + dm.y;
        }
        case DTYPE_Q2_K: {
            // Slot j: shift s = j / 2 of quant word j % 2; its scale byte is sub-block
            // 8(p / 4) + 2s + (p % 4) / 2 of the block.
            let s = j / 2u;
            let q = (r.a[j % 2u] >> (2u * s)) & 0x03030303u;
            let sc = (select(r.a.z, r.a.w, s >= 2u) >> (8u * (2u * (s % 2u) + (p % 4u) / 2u))) & 0xffu;
            let dm = unpack2x16float(r.s);
            let dl = dm.x * f32(sc & 0xfu);
            let ml = dm.y * f32(sc >> 4u);
            return dl * bytes_f32(q) - ml;
        }
        case DTYPE_Q3_K: {
            // As Q2_K, the high bit at bit 4(p / 4) + s of the hmask bytes, the 6-bit scale of
            // sub-block n = 8(p / 4) + 2s + (p % 4) / 2: low 4 bits from byte n % 8 (shifted by
            // 4(n / 8)), high 2 bits from byte 8 + n % 4 (shifted by 2(n / 4)).
            let s = j / 2u;
            let h = p / 4u;
            let q = ((r.a[j % 2u] >> (2u * s)) & 0x03030303u) | (((r.a[2u + j % 2u] >> (4u * h + s)) & 0x01010101u) << 2u);
            let at = 8u * (2u * (s % 2u) + (p % 4u) / 2u);
            let low = ((select(r.b.x, r.b.y, s >= 2u) >> at) >> (4u * h)) & 0xfu;
            let top = ((r.b.z >> at) >> (2u * (2u * h + s / 2u))) & 3u;
            let dl = d_of(r.s, g / 8u) * f32(i32(low | (top << 4u)) - 32);
            return offset_bytes_f32(q, 4.0, dl);
        }
        case DTYPE_Q4_K: {
            let d = unpack2x16float(r.a.x);
            let sm = k4_scale_min_of(r.a, 2u * (p / 2u) + u32(high));
            return (d.x * sm.x) * bytes_f32(nibble_bytes(r.b[i], high)) - d.y * sm.y;
        }
        case DTYPE_Q5_K: {
            let d = unpack2x16float(r.a.x);
            let sub = 2u * (p / 2u) + u32(high);
            let sm = k4_scale_min_of(r.a, sub);
            let q = nibble_bytes(r.b[i], high) | (((r.c[i] >> sub) & 0x01010101u) << 4u);
            return (d.x * sm.x) * bytes_f32(q) - d.y * sm.y;
        }
        case DTYPE_Q6_K: {
            // Group a = (p % 4) / 2 + 2·high of the 128-value half p / 4: top bits at bit 2a of
            // qh, scale 8(p / 4) + 2a + p % 2 (int8).
            let a = (p % 4u) / 2u + 2u * u32(high);
            let q = nibble_bytes(r.a[i], high) | (((r.b[i] >> (2u * a)) & 0x03030303u) << 4u);
            let n = 2u * a + p % 2u; // the scale's index in its word pair
            let sc = extractBits(bitcast<i32>(r.c[2u * (p / 4u) + n / 4u]), 8u * (n % 4u), 8u);
            return offset_bytes_f32(q, 32.0, d_of(r.s, g / 8u) * f32(sc));
        }
        default: {
            return vec4<f32>(0.0);
        }
    }
}
