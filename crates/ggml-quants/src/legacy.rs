//! The 32-value formats, ported from ggml's `ggml-quants.c` (`quantize_row_q*_ref`, `dequantize_row_q*`).
//!
//! Layouts (ggml's `block_q*` structs, little-endian, no padding):
//! - Q4_0 (18 bytes): f16 `d`, 16 bytes of nibbles. Value j (j < 16) is the low nibble of byte j, value
//!   j + 16 its high nibble; x = d·(q − 8).
//! - Q4_1 (20 bytes): f16 `d`, f16 `m`, 16 bytes of nibbles as Q4_0; x = d·q + m.
//! - Q5_0 (22 bytes): f16 `d`, u32 `qh` (bit j = fifth bit of value j), nibbles as Q4_0; x = d·(q − 16).
//! - Q5_1 (24 bytes): f16 `d`, f16 `m`, u32 `qh`, nibbles; x = d·q + m.
//! - Q8_0 (34 bytes): f16 `d`, 32 signed bytes; x = d·q.

use crate::scalar::{c_float_to_int, read_f16, write_f16};

const QK: usize = 32;

/// The value of largest magnitude (the first one wins a tie), as ggml's `amax`/`max` loop finds it.
fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// The smallest and largest values, starting from `FLT_MAX` / `-FLT_MAX` as ggml does.
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// `d ? 1.0f/d : 0.0f`.
fn inverse_or_zero(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

pub(crate) fn quantize_q4_0(x: &[f32], y: &mut [u8]) {
    let max = signed_absmax(x);
    let d = max / -8.0;
    let id = inverse_or_zero(d);
    write_f16(y, 0, d);
    for j in 0..QK / 2 {
        let x0 = x[j] * id;
        let x1 = x[QK / 2 + j] * id;
        let xi0 = (c_float_to_int(x0 + 8.5) as i8).min(15) as u8;
        let xi1 = (c_float_to_int(x1 + 8.5) as i8).min(15) as u8;
        y[2 + j] = xi0 | (xi1 << 4);
    }
}

pub(crate) fn dequantize_q4_0(y: &[u8], out: &mut [f32]) {
    let d = read_f16(y, 0);
    for j in 0..QK / 2 {
        let q = y[2 + j];
        out[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
        out[j + QK / 2] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

pub(crate) fn quantize_q4_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inverse_or_zero(d);
    write_f16(y, 0, d);
    write_f16(y, 2, min);
    for j in 0..QK / 2 {
        let x0 = (x[j] - min) * id;
        let x1 = (x[QK / 2 + j] - min) * id;
        let xi0 = (c_float_to_int(x0 + 0.5) as i8).min(15) as u8;
        let xi1 = (c_float_to_int(x1 + 0.5) as i8).min(15) as u8;
        y[4 + j] = xi0 | (xi1 << 4);
    }
}

pub(crate) fn dequantize_q4_1(y: &[u8], out: &mut [f32]) {
    let d = read_f16(y, 0);
    let m = read_f16(y, 2);
    for j in 0..QK / 2 {
        let q = y[4 + j];
        out[j] = (q & 0x0f) as f32 * d + m;
        out[j + QK / 2] = (q >> 4) as f32 * d + m;
    }
}

/// Packs 32 five-bit values: low nibbles into `qs` (value j and j + 16 share byte j), fifth bits into `qh`.
fn pack_5bit(q: &[u8; QK], qh: &mut [u8], qs: &mut [u8]) {
    let mut high = 0u32;
    for j in 0..QK / 2 {
        let (xi0, xi1) = (q[j], q[j + QK / 2]);
        qs[j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
        high |= u32::from((xi0 & 0x10) >> 4) << j;
        high |= u32::from((xi1 & 0x10) >> 4) << (j + QK / 2);
    }
    qh.copy_from_slice(&high.to_le_bytes());
}

/// The 32 five-bit values of a Q5 block (`qh` then `qs`).
fn unpack_5bit(qh: &[u8], qs: &[u8]) -> [u8; QK] {
    let high = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut q = [0u8; QK];
    for j in 0..QK / 2 {
        q[j] = (qs[j] & 0x0f) | ((((high >> j) << 4) & 0x10) as u8);
        q[j + QK / 2] = (qs[j] >> 4) | (((high >> (j + 12)) & 0x10) as u8);
    }
    q
}

pub(crate) fn quantize_q5_0(x: &[f32], y: &mut [u8]) {
    let max = signed_absmax(x);
    let d = max / -16.0;
    let id = inverse_or_zero(d);
    write_f16(y, 0, d);
    let mut q = [0u8; QK];
    for (qj, &xj) in q.iter_mut().zip(x) {
        *qj = (c_float_to_int(xj * id + 16.5) as i8).min(31) as u8;
    }
    let (qh, qs) = y[2..].split_at_mut(4);
    pack_5bit(&q, qh, qs);
}

pub(crate) fn dequantize_q5_0(y: &[u8], out: &mut [f32]) {
    let d = read_f16(y, 0);
    let q = unpack_5bit(&y[2..6], &y[6..22]);
    for (o, &qj) in out.iter_mut().zip(&q) {
        *o = (qj as i32 - 16) as f32 * d;
    }
}

pub(crate) fn quantize_q5_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inverse_or_zero(d);
    write_f16(y, 0, d);
    write_f16(y, 2, min);
    let mut q = [0u8; QK];
    for (qj, &xj) in q.iter_mut().zip(x) {
        *qj = c_float_to_int((xj - min) * id + 0.5) as u8;
    }
    let (qh, qs) = y[4..].split_at_mut(4);
    pack_5bit(&q, qh, qs);
}

pub(crate) fn dequantize_q5_1(y: &[u8], out: &mut [f32]) {
    let d = read_f16(y, 0);
    let m = read_f16(y, 2);
    let q = unpack_5bit(&y[4..8], &y[8..24]);
    for (o, &qj) in out.iter_mut().zip(&q) {
        *o = qj as f32 * d + m;
    }
}

pub(crate) fn quantize_q8_0(x: &[f32], y: &mut [u8]) {
    let amax = x.iter().fold(0.0f32, |m, &v| if m > v.abs() { m } else { v.abs() });
    let d = amax / 127.0;
    let id = inverse_or_zero(d);
    write_f16(y, 0, d);
    for (q, &v) in y[2..].iter_mut().zip(x) {
        // `roundf` (ties away from zero), stored to int8_t.
        *q = c_float_to_int((v * id).round()) as i8 as u8;
    }
}

pub(crate) fn dequantize_q8_0(y: &[u8], out: &mut [f32]) {
    let d = read_f16(y, 0);
    for (o, &q) in out.iter_mut().zip(&y[2..]) {
        *o = (q as i8) as f32 * d;
    }
}
