use crate::layer_norm::layer_norm;

/// CPU reference: LayerNorm of row `tokens[t]` of the dequantised `table` (rows of
/// `weight.len()` values) for every t; a row of NaN for ids outside the table.
pub fn embedding(tokens: &[u32], table: &[f32], weight: &[f32], bias: &[f32], eps: f32) -> Vec<f32> {
    let c = weight.len();
    let v = table.len() / c;
    let mut x = Vec::with_capacity(tokens.len() * c);
    for &id in tokens {
        let id = id as usize;
        if id < v {
            x.extend(layer_norm(&table[id * c..(id + 1) * c], weight, bias, eps));
        } else {
            x.extend(std::iter::repeat_n(f32::NAN, c));
        }
    }
    x
}
