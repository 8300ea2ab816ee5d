use super::LoraKind;

/// One LoRA for one token, in f64, written out from the spec (§3.2 steps 4-7) independently of
/// [`LoraKind::inner`] / [`LoraKind::outer`]: `a` is the first matrix (rank rows of C), `b` the
/// second (C rows of rank), `bias` is w0, a0 or v0 (None for g).
pub fn lora(kind: LoraKind, x: &[f32], a: &[f32], b: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    type Map = fn(f64) -> f64;
    let (inner, outer): (Map, Map) = match kind {
        LoraKind::Decay => (f64::tanh, |v| v),
        LoraKind::Iclr | LoraKind::Value => (|v| v, |v| 1.0 / (1.0 + (-v).exp())),
        LoraKind::Gate => (|v| 1.0 / (1.0 + (-v).exp()), |v| v),
    };
    let c = x.len();
    let rank = a.len() / c;
    let dot = |row: &[f32], v: &[f64]| row.iter().zip(v).map(|(&w, &x)| w as f64 * x).sum::<f64>();
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let h: Vec<f64> = (0..rank).map(|r| inner(dot(&a[r * c..(r + 1) * c], &xs))).collect();
    (0..c)
        .map(|i| {
            let z = dot(&b[i * rank..(i + 1) * rank], &h) + bias.map_or(0.0, |bv| bv[i] as f64);
            outer(z) as f32
        })
        .collect()
}
