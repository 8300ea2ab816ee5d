//! CPU reference of the RWKV-7 time-mix core (spec §3.2 steps 4-13, §4) in f64, and of the
//! second stage of the four LoRAs that the fused variant computes itself.

use super::{LoraRanks, ParamRow, TimeMixShape, GROUP_NORM_EPS, L2_NORM_EPS};
use crate::RowMode;

/// Decay from the LoRA output `z`: `w = exp(-0.606531·σ(z))`.
pub fn decay(z: f64) -> f64 {
    (-0.606531 * sigmoid(z)).exp()
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One WKV step of one head (step 11): updates `s` (N×N, row i = value channel, column j = key
/// channel) and returns `y = S·r` with the new state.
pub fn wkv_step(s: &mut [f64], w: &[f64], k: &[f64], v: &[f64], a: &[f64], b: &[f64], r: &[f64]) -> Vec<f64> {
    let n = w.len();
    let mut y = vec![0.0; n];
    for i in 0..n {
        let row = &mut s[i * n..(i + 1) * n];
        let sa: f64 = row.iter().zip(a).map(|(s, a)| s * a).sum();
        for j in 0..n {
            row[j] = row[j] * w[j] + v[i] * k[j] + sa * b[j];
        }
        y[i] = row.iter().zip(r).map(|(s, r)| s * r).sum();
    }
    y
}

/// GroupNorm of one head's `y` (biased variance), before the affine ln_x transform.
pub fn group_norm(y: &[f64], eps: f64) -> Vec<f64> {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    y.iter().map(|v| (v - mean) * inv).collect()
}

fn row(params: &[f32], c: usize, which: ParamRow) -> &[f32] {
    let r = which as usize;
    &params[r * c..(r + 1) * c]
}

/// The time-mix core for `T = rkv.len() / 3C` tokens, in order, carrying `state` ([H, N, N]).
///
/// `rkv` [T, 3C] (r, k, v per token), `lora` [T, 4C] (z, α, vgate, g per token), `params`
/// [rows, C] in [`ParamRow`] order (the first [`ParamRow::CORE_ROWS`] are used). Layer 0
/// (`first_layer`) writes `v_first` [T, C]; other layers read it. Returns `out` [T, C].
pub fn time_mix(
    shape: TimeMixShape,
    rkv: &[f32],
    lora: &[f32],
    params: &[f32],
    v_first: &mut [f32],
    state: &mut [f32],
) -> Vec<f32> {
    let (h_count, n) = (shape.heads as usize, shape.head_size as usize);
    let c = h_count * n;
    let tokens = rkv.len() / (3 * c);
    let f = |x: &[f32]| -> Vec<f64> { x.iter().map(|&v| v as f64).collect() };
    let (k_k, k_a, r_k) =
        (f(row(params, c, ParamRow::KK)), f(row(params, c, ParamRow::KA)), f(row(params, c, ParamRow::RK)));
    let (lnx_w, lnx_b) = (f(row(params, c, ParamRow::LnxWeight)), f(row(params, c, ParamRow::LnxBias)));
    let mut s = f(&state[..h_count * n * n]);
    let mut out = vec![0.0f32; tokens * c];
    for t in 0..tokens {
        let x = &rkv[t * 3 * c..(t + 1) * 3 * c];
        let l = &lora[t * 4 * c..(t + 1) * 4 * c];
        for h in 0..h_count {
            let ch = |base: usize, src: &[f32]| -> Vec<f64> { f(&src[base + h * n..base + (h + 1) * n]) };
            let (r, k, v_raw) = (ch(0, x), ch(c, x), ch(2 * c, x));
            let (z, alpha, vgate, g) = (ch(0, l), ch(c, l), ch(2 * c, l), ch(3 * c, l));
            let hc = |p: &[f64]| p[h * n..(h + 1) * n].to_vec();
            let (kk, ka, rk, lw, lb) = (hc(&k_k), hc(&k_a), hc(&r_k), hc(&lnx_w), hc(&lnx_b));
            // Step 7: value residual.
            let vf = &mut v_first[t * c + h * n..t * c + (h + 1) * n];
            let v: Vec<f64> = if shape.first_layer {
                for (dst, &src) in vf.iter_mut().zip(&v_raw) {
                    *dst = src as f32;
                }
                v_raw
            } else {
                (0..n).map(|i| v_raw[i] + (vf[i] as f64 - v_raw[i]) * vgate[i]).collect()
            };
            // Steps 4, 8-10.
            let w: Vec<f64> = z.iter().map(|&z| decay(z)).collect();
            let kappa: Vec<f64> = (0..n).map(|i| k[i] * kk[i]).collect();
            let norm = kappa.iter().map(|x| x * x).sum::<f64>().sqrt().max(L2_NORM_EPS as f64);
            let k_mod: Vec<f64> = (0..n).map(|i| k[i] * (1.0 + (alpha[i] - 1.0) * ka[i])).collect();
            let a: Vec<f64> = kappa.iter().map(|x| -x / norm).collect();
            let b: Vec<f64> = (0..n).map(|i| kappa[i] / norm * alpha[i]).collect();
            // Step 11.
            let y = wkv_step(&mut s[h * n * n..(h + 1) * n * n], &w, &k_mod, &v, &a, &b, &r);
            // Steps 12-13 and the gate.
            let o = group_norm(&y, GROUP_NORM_EPS as f64);
            let bonus: f64 = (0..n).map(|i| r[i] * k_mod[i] * rk[i]).sum();
            for i in 0..n {
                out[t * c + h * n + i] = (((o[i] * lw[i] + lb[i]) + bonus * v[i]) * g[i]) as f32;
            }
        }
    }
    for (dst, src) in state.iter_mut().zip(&s) {
        *dst = *src as f32;
    }
    out
}

/// The time-mix core in `mode`: [`time_mix`] on the whole call (Sequence, `state` [H, N, N]),
/// or on each token alone, a one-token sequence with its own state (Independent, `state`
/// [T, H, N, N], token t's at t·H·N²). Same layouts as [`time_mix`] otherwise.
pub fn time_mix_in_mode(
    mode: RowMode,
    shape: TimeMixShape,
    rkv: &[f32],
    lora: &[f32],
    params: &[f32],
    v_first: &mut [f32],
    state: &mut [f32],
) -> Vec<f32> {
    match mode {
        RowMode::Sequence => time_mix(shape, rkv, lora, params, v_first, state),
        RowMode::Independent => {
            let c = shape.channels() as usize;
            let per_state = c * shape.head_size as usize;
            let tokens = rkv.len() / (3 * c);
            let mut out = Vec::with_capacity(tokens * c);
            for t in 0..tokens {
                out.extend(time_mix(
                    shape,
                    &rkv[t * 3 * c..(t + 1) * 3 * c],
                    &lora[t * 4 * c..(t + 1) * 4 * c],
                    params,
                    &mut v_first[t * c..(t + 1) * c],
                    &mut state[t * per_state..(t + 1) * per_state],
                ));
            }
            out
        }
    }
}

/// Second stage of the four LoRAs for `T = hidden.len() / ranks.total()` tokens: from `hidden`
/// [T, Dw+Da+Dv+Dg] (h_w, h_a, h_v, h_g with their middle activations applied) and `lora_b`
/// (w2 [C, Dw], a2 [C, Da], v2 [C, Dv], g2 [C, Dg], row-major, packed in that order) computes
/// `lora` [T, 4C]: z = w0 + w2·h_w, α = σ(a0 + a2·h_a), vgate = σ(v0 + v2·h_v) (0 in layer 0,
/// where it is unused), g = g2·h_g.
pub fn lora_stage2(
    c: usize,
    ranks: LoraRanks,
    first_layer: bool,
    hidden: &[f32],
    lora_b: &[f32],
    params: &[f32],
) -> Vec<f32> {
    let d = [ranks.w as usize, ranks.a as usize, ranks.v as usize, ranks.g as usize];
    let total: usize = d.iter().sum();
    let tokens = hidden.len() / total;
    let dot = |m: usize, i: usize, h: &[f32]| -> f64 {
        let off_m: usize = d[..m].iter().map(|r| r * c).sum();
        let off_h: usize = d[..m].iter().sum();
        (0..d[m]).map(|j| lora_b[off_m + i * d[m] + j] as f64 * h[off_h + j] as f64).sum()
    };
    let (w0, a0, v0) = (row(params, c, ParamRow::W0), row(params, c, ParamRow::A0), row(params, c, ParamRow::V0));
    let mut out = vec![0.0f32; tokens * 4 * c];
    for t in 0..tokens {
        let h = &hidden[t * total..(t + 1) * total];
        let o = &mut out[t * 4 * c..(t + 1) * 4 * c];
        for i in 0..c {
            o[i] = (w0[i] as f64 + dot(0, i, h)) as f32;
            o[c + i] = sigmoid(a0[i] as f64 + dot(1, i, h)) as f32;
            o[2 * c + i] = if first_layer { 0.0 } else { sigmoid(v0[i] as f64 + dot(2, i, h)) as f32 };
            o[3 * c + i] = dot(3, i, h) as f32;
        }
    }
    out
}
