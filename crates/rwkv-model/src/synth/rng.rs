//! A small deterministic random source: SplitMix64 streams keyed by (seed, tensor, chunk), so values do not
//! depend on thread count or generation order.

/// SplitMix64 (Steele, Lea, Flood 2014): fast, statistically fine for synthetic weights.
pub(super) struct Rng(u64);

impl Rng {
    /// An independent stream for `key` (a tensor name) and `index` (a chunk of it) under `seed`.
    pub(super) fn stream(seed: u64, key: &str, index: u64) -> Rng {
        // FNV-1a over the key, then mixed with the seed and the index.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut rng = Rng(seed ^ mix(h) ^ mix(index.wrapping_add(0x5851_f42d_4c95_7f2d)));
        rng.next_u64();
        rng
    }

    #[inline]
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// An approximately standard normal value: the sum of four 16-bit uniforms, centred and scaled to unit
    /// variance (bounded at ±3.46; plenty for weights, and one 64-bit draw per value).
    #[inline]
    pub(super) fn normal(&mut self) -> f32 {
        const SCALE: f32 = 1.732_050_8 / 65536.0; // sqrt(3) / 2^16
        let r = self.next_u64();
        let sum = (r & 0xffff) + (r >> 16 & 0xffff) + (r >> 32 & 0xffff) + (r >> 48);
        (sum as f32 - 2.0 * 65535.0) * SCALE
    }
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_unit_variance_and_streams_differ() {
        let mut rng = Rng::stream(1, "x", 0);
        let n = 200_000;
        let values: Vec<f64> = (0..n).map(|_| f64::from(rng.normal())).collect();
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        let a: Vec<u64> = (0..4).map(|i| Rng::stream(1, "x", i).next_u64()).collect();
        let b = Rng::stream(2, "x", 0).next_u64();
        let c = Rng::stream(1, "y", 0).next_u64();
        assert!(a.iter().chain([&b, &c]).collect::<std::collections::HashSet<_>>().len() == 6);
        assert_eq!(Rng::stream(1, "x", 3).next_u64(), a[3], "streams are reproducible");
    }
}
