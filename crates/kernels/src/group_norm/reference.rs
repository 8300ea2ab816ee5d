/// CPU reference: GroupNorm of every head (`n` values) of every row (`weight.len()` values),
/// in f64, then times `weight` plus `bias` per channel.
pub fn group_norm(x: &[f32], weight: &[f32], bias: &[f32], n: usize, eps: f32) -> Vec<f32> {
    let c = weight.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(c) {
        for (h, head) in row.chunks(n).enumerate() {
            let mean = head.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = head.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let inv = 1.0 / (var + eps as f64).sqrt();
            for (i, &v) in head.iter().enumerate() {
                let ch = h * n + i;
                y.push(((v as f64 - mean) * inv * weight[ch] as f64 + bias[ch] as f64) as f32);
            }
        }
    }
    y
}
