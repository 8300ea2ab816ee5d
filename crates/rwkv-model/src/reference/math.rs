//! Small numeric helpers of the reference forward pass.

/// `y[m] = Σ_k W[m·K + k]·x[k]` with K = x.len(), accumulated in f64.
pub fn dot_rows(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len())
        .map(|row| row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32)
        .collect()
}

pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps as f64).sqrt();
    x.iter().zip(w).zip(b).map(|((&v, &w), &b)| ((v as f64 - mean) * inv * w as f64 + b as f64) as f32).collect()
}

/// LayerNorm of each group of `n` channels (no affine), then the per-channel affine.
pub fn group_norm(x: &[f32], w: &[f32], b: &[f32], n: usize, eps: f32) -> Vec<f32> {
    let ones = vec![1.0f32; n];
    let zeros = vec![0.0f32; n];
    let normed: Vec<f32> = x.chunks(n).flat_map(|g| layer_norm(g, &ones, &zeros, eps)).collect();
    normed.iter().zip(w).zip(b).map(|((&v, &w), &b)| v * w + b).collect()
}

/// Token-shift lerp: `x + (prev - x) ⊙ mix`.
pub fn lerp(x: &[f32], prev: &[f32], mix: &[f32]) -> Vec<f32> {
    x.iter().zip(prev).zip(mix).map(|((&x, &p), &m)| x + (p - x) * m).collect()
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
