//! CPU argmax for the tests: the engine samples greedily on the GPU (`sample` with temperature
//! 0), whose tests check it against this.

/// The argmax of every row of `v` values (ties to the lowest index, NaN skipped, `u32::MAX` for
/// a row of only NaN).
pub fn argmax(x: &[f32], v: usize) -> Vec<u32> {
    x.chunks(v)
        .map(|row| {
            let mut best: Option<(f32, usize)> = None;
            for (i, &x) in row.iter().enumerate() {
                if !x.is_nan() && best.is_none_or(|(b, _)| x > b) {
                    best = Some((x, i));
                }
            }
            best.map_or(u32::MAX, |(_, i)| i as u32)
        })
        .collect()
}
