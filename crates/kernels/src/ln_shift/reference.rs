use crate::layer_norm::layer_norm;
use crate::row_mode::shift_in_mode;
use crate::token_shift::token_shift;
use crate::RowMode;

/// CPU reference of the fused kernel: LayerNorm of every row of `x`, then the token shift.
/// Returns `y` [nmix, rows, C] (mix-major) and leaves the last normalised row in `shift_state`.
pub fn ln_shift(x: &[f32], weight: &[f32], bias: &[f32], eps: f32, mu: &[f32], shift_state: &mut [f32]) -> Vec<f32> {
    let nmix = mu.len() / weight.len();
    token_shift(&layer_norm(x, weight, bias, eps), mu, shift_state, nmix)
}

/// CPU reference of the fused kernel in `mode`: [`ln_shift`] on the whole call (Sequence, state
/// [C]) or on each row alone with its own state row (Independent, state [T, C]).
pub fn ln_shift_in_mode(
    mode: RowMode,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
    mu: &[f32],
    shift_state: &mut [f32],
) -> Vec<f32> {
    shift_in_mode(mode, weight.len(), x, shift_state, |rows, state| ln_shift(rows, weight, bias, eps, mu, state))
}
