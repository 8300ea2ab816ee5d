//! Q2_K and Q3_K, ported from ggml's `quantize_row_q2_K_ref`, `quantize_row_q3_K_ref`,
//! `dequantize_row_q2_K` and `dequantize_row_q3_K`. A block holds 256 values in 16 sub-blocks of 16.
//!
//! Layouts:
//! - Q2_K (84 bytes): `scales[16]` (low nibble: scale, high nibble: min, per sub-block), `qs[64]`,
//!   f16 `d`, f16 `dmin`. x = d·sc·q − dmin·m, q in 0..4.
//! - Q3_K (110 bytes): `hmask[32]`, `qs[64]`, `scales[12]` (16 six-bit scales), f16 `d`.
//!   x = d·(sc − 32)·(q − 4·(1 − h)), q in 0..4, h the value's hmask bit.
//!
//! Both store the 2-bit parts the same way: value e of the block is in byte `(e / 128)·32 + e % 32` of
//! `qs`, at bit `2·((e % 128) / 32)`. Q3_K's high bit of value e is bit `e / 32` of `hmask[e % 32]`.

use crate::kquant_search::{make_q3_quants, make_qkx2_quants, Qkx2Search};
use crate::scalar::{nearest_int, read_f16, write_f16};

const QK_K: usize = 256;

/// Packs 256 two-bit values into 64 bytes (`qs` of Q2_K and Q3_K).
fn pack_2bit(l: &[u8; QK_K], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] = l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// The two-bit part of value `e` from `qs`.
fn unpack_2bit(qs: &[u8], e: usize) -> u8 {
    (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3
}

const Q2_SEARCH: Qkx2Search = Qkx2Search { nmax: 3, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true };

pub(crate) fn quantize_q2_k(x: &[f32], y: &mut [u8]) {
    const Q4SCALE: f32 = 15.0;
    let mut l = [0u8; QK_K];
    let mut l_aux = [0u8; 16];
    let mut weights = [0f32; 16];
    let mut mins = [0f32; QK_K / 16];
    let mut scales = [0f32; QK_K / 16];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..QK_K / 16 {
        let xs = &x[16 * j..16 * j + 16];
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(&Q2_SEARCH, xs, &weights, &mut l[16 * j..16 * j + 16], &mut l_aux);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let (packed_scales, rest) = y.split_at_mut(16);
    let (qs, dd) = rest.split_at_mut(64);
    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for (s, &scale) in packed_scales.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * scale) as u8;
        }
        write_f16(dd, 0, max_scale / Q4SCALE);
    } else {
        packed_scales.fill(0);
        write_f16(dd, 0, 0.0);
    }
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for (s, &min) in packed_scales.iter_mut().zip(&mins) {
            *s |= (nearest_int(iscale * min) << 4) as u8;
        }
        write_f16(dd, 2, max_min / Q4SCALE);
    } else {
        write_f16(dd, 2, 0.0);
    }
    let (d_all, dmin_all) = (read_f16(dd, 0), read_f16(dd, 2));
    for j in 0..QK_K / 16 {
        let d = d_all * (packed_scales[j] & 0x0f) as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * (packed_scales[j] >> 4) as f32;
        for ii in 0..16 {
            l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
        }
    }
    pack_2bit(&l, qs);
}

pub(crate) fn dequantize_q2_k(y: &[u8], out: &mut [f32]) {
    let (scales, qs) = (&y[0..16], &y[16..80]);
    let d = read_f16(y, 80);
    let min = read_f16(y, 82);
    for (e, o) in out.iter_mut().enumerate() {
        let sc = scales[e / 16];
        let dl = d * (sc & 0x0f) as f32;
        let ml = min * (sc >> 4) as f32;
        *o = dl * unpack_2bit(qs, e) as f32 - ml;
    }
}

pub(crate) fn quantize_q3_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
    for j in 0..QK_K / 16 {
        scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        let scale = scales[j].abs();
        if scale > amax {
            amax = scale;
            max_scale = scales[j];
        }
    }

    let (hmask, rest) = y.split_at_mut(32);
    let (qs, rest) = rest.split_at_mut(64);
    let (packed, dd) = rest.split_at_mut(12);
    packed.fill(0);
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for (j, &scale) in scales.iter().enumerate() {
            let lj = ((nearest_int(iscale * scale) as i8).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                packed[j] = lj & 0x0f;
            } else {
                packed[j - 8] |= (lj & 0x0f) << 4;
            }
            packed[j % 4 + 8] |= (lj >> 4) << (2 * (j / 4));
        }
        write_f16(dd, 0, 1.0 / iscale);
    } else {
        write_f16(dd, 0, 0.0);
    }

    let d_all = read_f16(dd, 0);
    for j in 0..QK_K / 16 {
        let d = d_all * q3_scale(packed, j) as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-4, 3) + 4) as i8;
        }
    }

    // The high bit of the first 32 values goes to bit 0 of hmask[0..32], of the next 32 to bit 1, ...
    hmask.fill(0);
    let mut low = [0u8; QK_K];
    for (j, (&lj, lo)) in l.iter().zip(low.iter_mut()).enumerate() {
        let mut v = lj as u8;
        if v > 3 {
            hmask[j % 32] |= 1 << (j / 32);
            v -= 4;
        }
        *lo = v;
    }
    pack_2bit(&low, qs);
}

/// The 6-bit scale of sub-block `j` (0..16) of a Q3_K block, still offset by 32.
fn q3_scale(packed: &[u8], j: usize) -> i8 {
    let low = if j < 8 { packed[j] & 0x0f } else { packed[j - 8] >> 4 };
    let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    ((low | (high << 4)) as i8) - 32
}

pub(crate) fn dequantize_q3_k(y: &[u8], out: &mut [f32]) {
    let (hmask, qs, packed) = (&y[0..32], &y[32..96], &y[96..108]);
    let d_all = read_f16(y, 108);
    for (e, o) in out.iter_mut().enumerate() {
        let dl = d_all * q3_scale(packed, e / 16) as f32;
        let high_set = hmask[e % 32] & (1 << (e / 32)) != 0;
        let q = unpack_2bit(qs, e) as i32 - if high_set { 0 } else { 4 };
        *o = dl * q as f32;
    }
}

/// The 16 scales (offset removed) as `dequantize_row_q3_K` unpacks them, with 32-bit masks: an
/// independent reading for the test of [`q3_scale`].
#[cfg(test)]
fn q3_scales_by_masks(packed: &[u8]) -> [i8; 16] {
    // dequantize_row_q3_K's unpacking, with kmask1 = 0x03030303 and kmask2 = 0x0f0f0f0f.
    let word = |i: usize| u32::from_le_bytes([packed[4 * i], packed[4 * i + 1], packed[4 * i + 2], packed[4 * i + 3]]);
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let (k1, k2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
    let aux = [
        (a0 & k2) | ((tmp & k1) << 4),
        (a1 & k2) | (((tmp >> 2) & k1) << 4),
        ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4),
        ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4),
    ];
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = aux[i / 4].to_le_bytes()[i % 4] as i8 - 32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q3_scale_unpacking_matches_ggml_masks() {
        let mut state = 0x1234_5678u32;
        for _ in 0..1000 {
            let mut packed = [0u8; 12];
            for b in &mut packed {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = (state >> 24) as u8;
            }
            let by_masks = q3_scales_by_masks(&packed);
            for (j, &want) in by_masks.iter().enumerate() {
                assert_eq!(q3_scale(&packed, j), want, "scale {j} of {packed:02x?}");
            }
        }
    }

    #[test]
    fn two_bit_positions_are_a_bijection() {
        let mut l = [0u8; QK_K];
        for e in 0..QK_K {
            l.fill(0);
            l[e] = 3;
            let mut qs = [0u8; 64];
            pack_2bit(&l, &mut qs);
            for f in 0..QK_K {
                assert_eq!(unpack_2bit(&qs, f), if f == e { 3 } else { 0 }, "packed {e}, read {f}");
            }
        }
    }
}
