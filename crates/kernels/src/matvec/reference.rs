use super::Prologue;
use crate::ln_shift::ln_shift;
use crate::projection::Projection;

/// CPU reference for T tokens (T = 1 for matvec) in f64, on dequantised weights `w` (the
/// segments' matrices stacked by rows), with the layouts of [`crate::projection`]. `y` holds the
/// previous output (used when `residual`) and receives the result.
pub fn projection(spec: &Projection, t: usize, x: &[f32], w: &[f32], bias: &[f32], y: &mut [f32]) {
    let mut w_at = 0usize;
    for (s, y_row) in spec.segments.iter().zip(spec.y_rows()) {
        let (rows, k) = (s.rows as usize, s.k as usize);
        for m in 0..rows {
            let row = &w[w_at + m * k..w_at + (m + 1) * k];
            for tok in 0..t {
                let xs = &x[s.x_offset as usize * t + tok * k..][..k];
                let mut acc: f64 = row.iter().zip(xs).map(|(&a, &b)| a as f64 * b as f64).sum();
                if s.bias {
                    acc += bias[y_row as usize + m] as f64;
                }
                let v = s.activation.apply(acc);
                let out = &mut y[y_row as usize * t + tok * rows + m];
                *out = if spec.residual { (*out as f64 + v) as f32 } else { v as f32 };
            }
        }
        w_at += rows * k;
    }
}

/// CPU reference of [`super::PrologueMatvec`] for one token: the mixed input of every input
/// block is `ln_shift` of the raw residual `x` [C] with the LayerNorm weight and bias and the mix
/// rows taken from `vecs` (rows of C) and half `parity` of `shift` [2, C] as the previous token;
/// then [`projection`] on it. Returns the shift state after the dispatch: half 1 - parity holds
/// LN(x) when the prologue writes the state, half parity (and everything else) is unchanged.
#[allow(clippy::too_many_arguments)]
pub fn prologue_projection(
    spec: &Projection,
    prologue: &Prologue,
    parity: usize,
    x: &[f32],
    vecs: &[f32],
    shift: &[f32],
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
) -> Vec<f32> {
    let c = prologue.c as usize;
    let row = |r: u32| &vecs[r as usize * c..(r as usize + 1) * c];
    let blocks = spec.segments.iter().map(|s| s.x_offset as usize / c + 1).max().unwrap_or(1);
    let mix = &vecs[prologue.mix_row as usize * c..(prologue.mix_row as usize + blocks) * c];
    let mut state = shift[parity * c..(parity + 1) * c].to_vec();
    // [blocks, 1, C]: block b at element b * C, as the segments' x_offset address it.
    let input = ln_shift(x, row(prologue.ln_weight_row), row(prologue.ln_bias_row), prologue.eps, mix, &mut state);
    projection(spec, 1, &input, w, bias, y);
    let mut after = shift.to_vec();
    if prologue.write_shift {
        after[(1 - parity) * c..(2 - parity) * c].copy_from_slice(&state);
    }
    after
}
