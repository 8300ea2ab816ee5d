use crate::layer_norm::layer_norm;
use crate::token_shift::token_shift;

/// CPU reference of the fused kernel: LayerNorm of every row of `x`, then the token shift.
/// Returns `y` [nmix, rows, C] (mix-major) and leaves the last normalised row in `shift_state`.
pub fn ln_shift(x: &[f32], weight: &[f32], bias: &[f32], eps: f32, mu: &[f32], shift_state: &mut [f32]) -> Vec<f32> {
    let nmix = mu.len() / weight.len();
    token_shift(&layer_norm(x, weight, bias, eps), mu, shift_state, nmix)
}
