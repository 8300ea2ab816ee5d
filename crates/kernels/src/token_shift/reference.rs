use crate::row_mode::shift_in_mode;
use crate::RowMode;

/// CPU reference of the token shift: `xa` holds rows of `shift_state.len()` channels, `mu`
/// holds `nmix` rows. Returns `y` [nmix, rows, C] (mix-major) and leaves the last row in `shift_state`.
pub fn token_shift(xa: &[f32], mu: &[f32], shift_state: &mut [f32], nmix: usize) -> Vec<f32> {
    let c = shift_state.len();
    let mut y = Vec::with_capacity(xa.len() * nmix);
    for j in 0..nmix {
        for (t, row) in xa.chunks(c).enumerate() {
            let prev = if t == 0 { &shift_state[..] } else { &xa[(t - 1) * c..t * c] };
            for i in 0..c {
                y.push(row[i] + (prev[i] - row[i]) * mu[j * c + i]);
            }
        }
    }
    if let Some(last) = xa.chunks(c).last() {
        shift_state.copy_from_slice(last);
    }
    y
}

/// CPU reference of the token shift in `mode`: [`token_shift`] on the whole call (Sequence,
/// state [C]) or on each row alone with its own state row (Independent, state [T, C]).
pub fn token_shift_in_mode(mode: RowMode, xa: &[f32], mu: &[f32], shift_state: &mut [f32], nmix: usize) -> Vec<f32> {
    shift_in_mode(mode, mu.len() / nmix, xa, shift_state, |rows, state| token_shift(rows, mu, state, nmix))
}
