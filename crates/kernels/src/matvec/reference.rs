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
