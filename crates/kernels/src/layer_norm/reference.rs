/// CPU reference: LayerNorm of each row of `x` (rows of `weight.len()` values), in f64.
pub fn layer_norm(x: &[f32], weight: &[f32], bias: &[f32], eps: f32) -> Vec<f32> {
    let c = weight.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(c) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for i in 0..c {
            y.push(((row[i] as f64 - mean) * inv * weight[i] as f64 + bias[i] as f64) as f32);
        }
    }
    y
}
