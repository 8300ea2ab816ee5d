//! Sampling settings, and the CPU sampler used where the GPU sampler has no equivalent (banned
//! tokens, which chat needs): ChatRWKV's semantics (spec §8), written to match `kernels::sample`
//! step for step (same penalty bookkeeping, same counter-based random numbers).

use anyhow::{bail, Result};

/// What to sample with. Temperature 0 is greedy (ChatRWKV: temperature 1 with top_p 0).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    pub temperature: f32,
    pub top_p: f32,
    /// 0 = off.
    pub top_k: u32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// Multiplies every occurrence count after each token.
    pub penalty_decay: f32,
    pub seed: u64,
    /// Tokens never sampled (chat bans token 0, the end-of-text separator).
    pub banned: Vec<u32>,
}

impl SamplerConfig {
    /// Greedy decoding without penalties (benchmarks, tests).
    pub fn greedy() -> SamplerConfig {
        SamplerConfig {
            temperature: 0.0,
            top_p: 0.0,
            top_k: 0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_decay: 1.0,
            seed: 0,
            banned: Vec::new(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            bail!("--temperature must be a number >= 0 (0 = greedy), got {}", self.temperature);
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            bail!("--top-p must be between 0 and 1, got {}", self.top_p);
        }
        for (flag, v) in
            [("--presence-penalty", self.presence_penalty), ("--frequency-penalty", self.frequency_penalty)]
        {
            if !v.is_finite() {
                bail!("{flag} must be a finite number, got {v}");
            }
        }
        if !self.penalty_decay.is_finite() || !(0.0..=1.0).contains(&self.penalty_decay) {
            bail!("--penalty-decay must be between 0 and 1, got {}", self.penalty_decay);
        }
        Ok(())
    }
}

fn hash32(x: u32) -> u32 {
    let mut h = x;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    h
}

/// The uniform number in [0, 1) (24 bits) for `step` of the sequence seeded `seed`: the GPU
/// sampler's counter-based generator.
pub fn draw_uniform(seed: u64, step: u32) -> f32 {
    let h = hash32(step ^ hash32(seed as u32 ^ hash32((seed >> 32) as u32 ^ 0x9e37_79b9)));
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The index of the largest value (ties to the lowest index; NaN never wins).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

/// Sampling state of one sequence: occurrence counts and the step counter.
pub struct CpuSampler {
    cfg: SamplerConfig,
    counts: Vec<f32>,
    seen: Vec<bool>,
    step: u32,
}

impl CpuSampler {
    pub fn new(cfg: SamplerConfig, vocab: usize) -> CpuSampler {
        CpuSampler { cfg, counts: vec![0.0; vocab], seen: vec![false; vocab], step: 0 }
    }

    /// Picks the next token from `logits` and updates the penalty counts.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let p = &self.cfg;
        let mut l: Vec<f32> = logits
            .iter()
            .zip(self.seen.iter().zip(&self.counts))
            .map(|(&x, (&seen, &count))| if seen { x - (p.presence_penalty + count * p.frequency_penalty) } else { x })
            .collect();
        for &b in &p.banned {
            if let Some(x) = l.get_mut(b as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
        let (temperature, top_p) = if p.temperature == 0.0 { (1.0, 0.0) } else { (p.temperature, p.top_p) };
        let token =
            if top_p == 0.0 && p.top_k == 0 || p.top_k == 1 { argmax(&l) } else { self.draw(&l, temperature, top_p) };
        for c in self.counts.iter_mut() {
            *c *= self.cfg.penalty_decay;
        }
        self.counts[token] += 1.0;
        self.seen[token] = true;
        self.step += 1;
        token as u32
    }

    fn draw(&self, l: &[f32], temperature: f32, top_p: f32) -> usize {
        let v = l.len();
        let m = l.iter().fold(f32::MIN, |a, &b| a.max(b));
        let e: Vec<f64> = l.iter().map(|&x| ((x - m) as f64).exp()).collect();
        let total: f64 = e.iter().sum();
        let mut sorted = e.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let mut cutoff = 0.0f64;
        if top_p < 1.0 {
            let target = top_p as f64 * total;
            let mut cum = 0.0;
            cutoff = sorted[v - 1];
            for &s in &sorted {
                cum += s;
                if cum >= target {
                    cutoff = s;
                    break;
                }
            }
        }
        let k = self.cfg.top_k as usize;
        if k > 0 && k < v {
            cutoff = cutoff.max(sorted[k - 1]);
        }
        let weight = |x: f64| if temperature != 1.0 { x.powf(1.0 / temperature as f64) } else { x };
        let w: Vec<f64> = e.iter().map(|&x| if x < cutoff || x == 0.0 { 0.0 } else { weight(x) }).collect();
        let wtotal: f64 = w.iter().sum();
        let r = draw_uniform(self.cfg.seed, self.step) as f64 * wtotal;
        let mut cum = 0.0;
        let mut last_positive = argmax(l);
        for (i, &wi) in w.iter().enumerate() {
            if wi > 0.0 {
                last_positive = i;
                cum += wi;
                if r < cum {
                    return i;
                }
            }
        }
        last_positive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32, top_p: f32, top_k: u32) -> SamplerConfig {
        SamplerConfig { temperature, top_p, top_k, seed: 7, ..SamplerConfig::greedy() }
    }

    #[test]
    fn greedy_takes_the_argmax_and_bans_are_respected() {
        let logits = [0.5, 3.0, 3.0, -1.0];
        assert_eq!(CpuSampler::new(cfg(0.0, 0.85, 0), 4).sample(&logits), 1);
        let banned = SamplerConfig { banned: vec![1], ..cfg(0.0, 0.0, 0) };
        assert_eq!(CpuSampler::new(banned, 4).sample(&logits), 2);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_candidates() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32) * 0.1).collect();
        let mut top2 = CpuSampler::new(cfg(1.0, 1.0, 2), 50);
        let mut tight = CpuSampler::new(cfg(1.0, 0.01, 0), 50);
        for _ in 0..200 {
            assert!(top2.sample(&logits) >= 48);
            assert_eq!(tight.sample(&logits), 49);
        }
    }

    #[test]
    fn sampling_follows_the_probabilities() {
        // Two tokens at logits 0 and ln 3: probabilities 1/4 and 3/4.
        let logits = [0.0, 3f32.ln()];
        let mut s = CpuSampler::new(cfg(1.0, 1.0, 0), 2);
        let n = 4000;
        let ones = (0..n).filter(|_| s.sample(&logits) == 1).count() as f64 / n as f64;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
    }

    #[test]
    fn penalties_push_repeated_tokens_down() {
        let logits = [1.0, 1.1];
        let mut s = CpuSampler::new(SamplerConfig { presence_penalty: 0.5, ..cfg(0.0, 0.0, 0) }, 2);
        assert_eq!(s.sample(&logits), 1);
        assert_eq!(s.sample(&logits), 0, "token 1 is penalised by 0.5 after it was seen");
    }

    #[test]
    fn validation_rejects_bad_settings() {
        assert!(cfg(-1.0, 0.5, 0).validate().is_err());
        assert!(cfg(1.0, 1.5, 0).validate().is_err());
        assert!(SamplerConfig { penalty_decay: 2.0, ..cfg(1.0, 0.5, 0) }.validate().is_err());
        assert!(cfg(1.0, 0.85, 0).validate().is_ok());
    }
}
