//! Q4_K, Q5_K and Q6_K, ported from ggml's `quantize_row_q{4,5,6}_K_ref` and `dequantize_row_q{4,5,6}_K`.
//! A block holds 256 values.
//!
//! Layouts:
//! - Q4_K (144 bytes): f16 `d`, f16 `dmin`, `scales[12]` (8 six-bit scales and mins, see
//!   [`get_scale_min_k4`]), `qs[128]`. Sub-block s (32 values) is x = d·sc·q − dmin·m. Value e is in byte
//!   `(e / 64)·32 + e % 32` of `qs`, low nibble when `e % 64 < 32`, else high nibble.
//! - Q5_K (176 bytes): f16 `d`, f16 `dmin`, `scales[12]`, `qh[32]`, `qs[128]`. As Q4_K with a fifth bit:
//!   bit `e / 32` of `qh[e % 32]`.
//! - Q6_K (210 bytes): `ql[128]`, `qh[64]`, `scales[16]` (int8, one per 16 values), f16 `d`.
//!   x = d·sc·(q − 32). Value e (h = e / 128, r = e % 128, g = r / 32, i = r % 32): low 4 bits in
//!   `ql[64·h + 32·(g % 2) + i]` (low nibble for g < 2, high for g ≥ 2), top 2 bits at bit 2·g of
//!   `qh[32·h + i]`.

use crate::kquant_search::{
    get_scale_min_k4, make_qkx2_quants, make_qx_quants, pack_scale_min_k4, Qkx2Search, GROUP_MAX_EPS,
};
use crate::scalar::{nearest_int, read_f16, write_f16};

const QK_K: usize = 256;

/// The shared first half of the Q4_K and Q5_K reference quantizers: per-32 scale/min search, 6-bit
/// scales, then every value re-quantized with the stored scales. Writes `d`, `dmin` and `scales` into
/// `head` (16 bytes) and returns the levels.
fn quantize_scaled_mins(x: &[f32], search: &Qkx2Search, head: &mut [u8]) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    let mut l_aux = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut mins = [0f32; QK_K / 32];
    let mut scales = [0f32; QK_K / 32];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(search, xs, &weights, &mut l[32 * j..32 * j + 32], &mut l_aux);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..QK_K / 32 {
        ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    let packed = &mut head[4..16];
    pack_scale_min_k4(&ls, &lm, packed);
    write_f16(head, 0, max_scale / 63.0);
    write_f16(head, 2, max_min / 63.0);

    let (d_all, dmin_all) = (read_f16(head, 0), read_f16(head, 2));
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, &head[4..16]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, search.nmax) as u8;
        }
    }
    l
}

/// Sub-block `s`'s scale and min multipliers (`d·sc`, `dmin·m`) of a Q4_K/Q5_K block.
fn scale_min(y: &[u8], s: usize) -> (f32, f32) {
    let (sc, m) = get_scale_min_k4(s, &y[4..16]);
    (read_f16(y, 0) * sc as f32, read_f16(y, 2) * m as f32)
}

const Q4_SEARCH: Qkx2Search = Qkx2Search { nmax: 15, rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false };

pub(crate) fn quantize_q4_k(x: &[f32], y: &mut [u8]) {
    let l = quantize_scaled_mins(x, &Q4_SEARCH, &mut y[..16]);
    let qs = &mut y[16..144];
    for (chunk, q) in l.chunks_exact(64).zip(qs.chunks_exact_mut(32)) {
        for i in 0..32 {
            q[i] = chunk[i] | (chunk[i + 32] << 4);
        }
    }
}

pub(crate) fn dequantize_q4_k(y: &[u8], out: &mut [f32]) {
    let qs = &y[16..144];
    for (e, o) in out.iter_mut().enumerate() {
        let (d, m) = scale_min(y, e / 32);
        let byte = qs[(e / 64) * 32 + e % 32];
        let q = if e % 64 < 32 { byte & 0x0f } else { byte >> 4 };
        *o = d * q as f32 - m;
    }
}

const Q5_SEARCH: Qkx2Search = Qkx2Search { nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: false };

pub(crate) fn quantize_q5_k(x: &[f32], y: &mut [u8]) {
    let l = quantize_scaled_mins(x, &Q5_SEARCH, &mut y[..16]);
    let (qh, ql) = y[16..176].split_at_mut(32);
    qh.fill(0);
    let (mut m1, mut m2) = (1u8, 2u8);
    for (chunk, q) in l.chunks_exact(64).zip(ql.chunks_exact_mut(32)) {
        for j in 0..32 {
            let mut l1 = chunk[j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = chunk[j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            q[j] = l1 | (l2 << 4);
        }
        m1 <<= 2;
        m2 <<= 2;
    }
}

pub(crate) fn dequantize_q5_k(y: &[u8], out: &mut [f32]) {
    let (qh, ql) = (&y[16..48], &y[48..176]);
    for (e, o) in out.iter_mut().enumerate() {
        let (d, m) = scale_min(y, e / 32);
        let byte = ql[(e / 64) * 32 + e % 32];
        let low = if e % 64 < 32 { byte & 0x0f } else { byte >> 4 };
        let high = if qh[e % 32] & (1 << (e / 32)) != 0 { 16 } else { 0 };
        *o = d * (low + high) as f32 - m;
    }
}

pub(crate) fn quantize_q6_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for ib in 0..QK_K / 16 {
        let scale = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
        scales[ib] = scale;
        if scale.abs() > max_abs_scale {
            max_abs_scale = scale.abs();
            max_scale = scale;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        y.fill(0);
        return;
    }

    let (ql, rest) = y.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    let (packed, dd) = rest.split_at_mut(16);
    let iscale = -128.0 / max_scale;
    write_f16(dd, 0, 1.0 / iscale);
    for (s, &scale) in packed.iter_mut().zip(&scales) {
        *s = nearest_int(iscale * scale).min(127) as i8 as u8;
    }
    let d_all = read_f16(dd, 0);
    for j in 0..QK_K / 16 {
        let d = d_all * (packed[j] as i8) as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as u8;
        }
    }

    for ((chunk, ql), qh) in l.chunks_exact(128).zip(ql.chunks_exact_mut(64)).zip(qh.chunks_exact_mut(32)) {
        for i in 0..32 {
            let (q1, q2, q3, q4) = (chunk[i], chunk[i + 32], chunk[i + 64], chunk[i + 96]);
            ql[i] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
            ql[i + 32] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
            qh[i] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
}

pub(crate) fn dequantize_q6_k(y: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&y[0..128], &y[128..192], &y[192..208]);
    let d = read_f16(y, 208);
    for (e, o) in out.iter_mut().enumerate() {
        let (h, r) = (e / 128, e % 128);
        let (g, i) = (r / 32, r % 32);
        let byte = ql[64 * h + 32 * (g % 2) + i];
        let low = if g < 2 { byte & 0x0f } else { byte >> 4 };
        let high = (qh[32 * h + i] >> (2 * g)) & 3;
        let q = (low | (high << 4)) as i32 - 32;
        *o = d * (scales[e / 16] as i8) as f32 * q as f32;
    }
}
