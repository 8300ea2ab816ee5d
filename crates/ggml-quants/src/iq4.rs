//! IQ4_NL and IQ4_XS: 4-bit indices into ggml's non-linear table `kvalues_iq4nl`, ported from
//! `quantize_row_iq4_nl_impl` as `quantize_iq4_nl` / `quantize_iq4_xs` call it without quantization
//! weights (what `llama-quantize` runs without an importance matrix: weights x², 7 trial scales each
//! side), and from `dequantize_row_iq4_nl` / `dequantize_row_iq4_xs`.
//!
//! Layouts:
//! - IQ4_NL (18 bytes, 32 values): f16 `d`, 16 bytes of indices (value j < 16 in the low nibble of byte
//!   j, value j + 16 in its high nibble). x = d·kvalues[q].
//! - IQ4_XS (136 bytes, 256 values): f16 `d`, u16 `scales_h`, `scales_l[4]`, `qs[128]`. Sub-block s
//!   (32 values) has the 6-bit scale `ls` = low nibble of `scales_l[s / 2]` (high nibble for odd s) plus
//!   bits `2s..2s+2` of `scales_h` as its top two bits; x = d·(ls − 32)·kvalues[q], indices of a
//!   sub-block packed as in IQ4_NL in `qs[16·s..16·s + 16]`.

use crate::kquant_search::GROUP_MAX_EPS;
use crate::scalar::{nearest_int, read_f16, write_f16};

/// ggml's `kvalues_iq4nl`.
const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// How many trial scales the search tries on each side of the first guess (`ntry` in ggml).
const NTRY: i32 = 7;

const BLOCK: usize = 32;

/// ggml's `best_index_int8` for the IQ4 table: the index of the table value nearest `x`, a value at an
/// exact midpoint going to the upper neighbour. Compares `2x` with the sum of neighbours, both exact.
fn best_index(x: f32) -> u8 {
    let x2 = x + x;
    let mut idx = 0usize;
    let mut step = KVALUES_IQ4NL.len() >> 1;
    while step > 0 {
        let j = idx + step;
        if x2 >= (i32::from(KVALUES_IQ4NL[j - 1]) + i32::from(KVALUES_IQ4NL[j])) as f32 {
            idx = j;
        }
        step >>= 1;
    }
    idx as u8
}

/// The per-32 part of `quantize_row_iq4_nl_impl` without quantization weights: the best scale for `xb`
/// (0 for an all-zero block). ggml also stores the indices of the first guess here, but both callers
/// recompute every index from the final scale, so they are not kept.
fn block_scale(xb: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in xb {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let first = f32::from(KVALUES_IQ4NL[0]);
    let mut d = -max / first;
    let mut id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for &x in xb {
        let q = f32::from(KVALUES_IQ4NL[best_index(id * x) as usize]);
        let w = x * x;
        sumqx += w * q * x;
        sumq2 += w * q * q;
    }
    d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        id = (itry + i32::from(KVALUES_IQ4NL[0])) as f32 / max;
        sumqx = 0.0;
        sumq2 = 0.0;
        for &x in xb {
            let q = f32::from(KVALUES_IQ4NL[best_index(id * x) as usize]);
            let w = x * x;
            sumqx += w * q * x;
            sumq2 += w * q * q;
        }
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// Packs 32 indices as IQ4_NL does: value j and j + 16 share byte j.
fn pack_indices(l: &[u8], q4: &mut [u8]) {
    for j in 0..BLOCK / 2 {
        q4[j] = l[j] | (l[j + BLOCK / 2] << 4);
    }
}

/// The index of value j (0..32) of a 16-byte group of packed indices.
fn index(q4: &[u8], j: usize) -> usize {
    usize::from(if j < BLOCK / 2 { q4[j] & 0x0f } else { q4[j - BLOCK / 2] >> 4 })
}

pub(crate) fn quantize_iq4_nl(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; BLOCK];
    let scale = block_scale(x);
    write_f16(y, 0, scale);
    let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    for (lj, &xj) in l.iter_mut().zip(x) {
        *lj = best_index(id * xj);
    }
    pack_indices(&l, &mut y[2..18]);
}

pub(crate) fn dequantize_iq4_nl(y: &[u8], out: &mut [f32]) {
    let d = read_f16(y, 0);
    for (j, o) in out.iter_mut().enumerate() {
        *o = d * f32::from(KVALUES_IQ4NL[index(&y[2..18], j)]);
    }
}

const SUB_BLOCKS: usize = 8;

pub(crate) fn quantize_iq4_xs(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; BLOCK * SUB_BLOCKS];
    let mut scales = [0f32; SUB_BLOCKS];
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    for (ib, scale) in scales.iter_mut().enumerate() {
        *scale = block_scale(&x[ib * BLOCK..(ib + 1) * BLOCK]);
        if scale.abs() > amax_scale {
            amax_scale = scale.abs();
            max_scale = *scale;
        }
    }

    let d = -max_scale / 32.0;
    write_f16(y, 0, d);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut scales_h = 0u16;
    let mut scales_l = [0u8; SUB_BLOCKS / 2];
    for (ib, &scale) in scales.iter().enumerate() {
        let ls = nearest_int(id * scale).clamp(-32, 31);
        let dl = d * ls as f32;
        let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
        for j in ib * BLOCK..(ib + 1) * BLOCK {
            l[j] = best_index(idl * x[j]);
        }
        let biased = (ls + 32) as u8;
        scales_l[ib / 2] |= (biased & 0x0f) << (4 * (ib % 2));
        scales_h |= u16::from(biased >> 4) << (2 * ib);
    }
    y[2..4].copy_from_slice(&scales_h.to_le_bytes());
    y[4..8].copy_from_slice(&scales_l);
    for (lb, q4) in l.chunks_exact(BLOCK).zip(y[8..136].chunks_exact_mut(BLOCK / 2)) {
        pack_indices(lb, q4);
    }
}

pub(crate) fn dequantize_iq4_xs(y: &[u8], out: &mut [f32]) {
    let d = read_f16(y, 0);
    let scales_h = u16::from_le_bytes([y[2], y[3]]);
    for (ib, chunk) in out.chunks_exact_mut(BLOCK).enumerate() {
        let low = (y[4 + ib / 2] >> (4 * (ib % 2))) & 0x0f;
        let high = ((scales_h >> (2 * ib)) & 3) as u8;
        let dl = d * ((low | (high << 4)) as i32 - 32) as f32;
        let q4 = &y[8 + 16 * ib..8 + 16 * (ib + 1)];
        for (j, o) in chunk.iter_mut().enumerate() {
            *o = dl * f32::from(KVALUES_IQ4NL[index(q4, j)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's earlier `best_index_int8` (clamp at the ends, bisection, then compare distances): the
    /// midpoint search must pick the same index wherever the two differ only by exact arithmetic.
    fn best_index_by_distance(x: f32) -> u8 {
        let val = &KVALUES_IQ4NL;
        let n = val.len();
        if x <= f32::from(val[0]) {
            return 0;
        }
        if x >= f32::from(val[n - 1]) {
            return (n - 1) as u8;
        }
        let (mut ml, mut mu) = (0usize, n - 1);
        while mu - ml > 1 {
            let mav = (ml + mu) / 2;
            if x < f32::from(val[mav]) {
                mu = mav;
            } else {
                ml = mav;
            }
        }
        if x - f32::from(val[mu - 1]) < f32::from(val[mu]) - x {
            (mu - 1) as u8
        } else {
            mu as u8
        }
    }

    #[test]
    fn best_index_picks_the_nearest_table_value() {
        for i in -300_000..300_000 {
            let x = i as f32 * 0.000_5;
            assert_eq!(best_index(x), best_index_by_distance(x), "x = {x}");
        }
        // Exact midpoints go up.
        assert_eq!(best_index(-4.5), 8);
        assert_eq!(best_index(7.0), 9);
        assert_eq!(best_index(-1000.0), 0);
        assert_eq!(best_index(1000.0), 15);
    }
}
