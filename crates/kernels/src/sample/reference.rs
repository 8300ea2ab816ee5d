use super::SampleParams;

/// Relative distance from a decision boundary below which the GPU's f32 arithmetic (sums in
/// another order, exp and pow within a few ulps; pow(e, 1/T) loses up to ~1e-5 for tiny e)
/// may legitimately decide otherwise.
const BORDERLINE: f64 = 5e-5;

/// One reference sampling step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub token: u32,
    /// Every token the GPU may pick without being wrong, `token` included: those whose interval
    /// of the draw comes within rounding of r ([`BORDERLINE`] of the total, widened by the
    /// weight of every token whose membership in the top-p/top-k set rounding could flip).
    /// Banned tokens are never among them.
    pub candidates: Vec<u32>,
}

impl Outcome {
    /// The draw lay within rounding of another token: the GPU may pick any of `candidates`.
    pub fn borderline(&self) -> bool {
        self.candidates.len() > 1
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

/// The kernel's uniform number in [0, 1) (24 bits) for `step` of the sequence seeded `seed`.
pub fn draw_uniform(seed: u64, step: u32) -> f32 {
    let h = hash32(step ^ hash32(seed as u32 ^ hash32((seed >> 32) as u32 ^ 0x9e37_79b9)));
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// CPU reference of one sampling step (the semantics of `sample.wgsl`, in f64 where it sums),
/// then the kernel's bookkeeping of `counts` and `seen` for the token chosen.
pub fn sample(
    logits: &[f32],
    counts: &mut [f32],
    seen: &mut [bool],
    p: &SampleParams,
    seed: u64,
    step: u32,
) -> Outcome {
    let outcome = decide(logits, counts, seen, p, seed, step);
    update(counts, seen, p.penalty_decay, outcome.token);
    outcome
}

/// The kernel's bookkeeping after `token` was sampled: every count decays, the token's count
/// grows by one and it is marked seen.
pub fn update(counts: &mut [f32], seen: &mut [bool], decay: f32, token: u32) {
    for c in counts.iter_mut() {
        *c *= decay;
    }
    counts[token as usize] += 1.0;
    seen[token as usize] = true;
}

/// CPU reference of the choice of one sampling step (no bookkeeping).
pub fn decide(logits: &[f32], counts: &[f32], seen: &[bool], p: &SampleParams, seed: u64, step: u32) -> Outcome {
    let v = logits.len();
    let (temperature, top_p) = if p.temperature == 0.0 { (1.0, 0.0) } else { (p.temperature, p.top_p) };
    let banned = |i: usize| p.banned().contains(&(i as u32));
    let l: Vec<f32> = (0..v)
        .map(|i| if seen[i] { logits[i] - (p.presence_penalty + counts[i] * p.frequency_penalty) } else { logits[i] })
        .collect();
    let m = (0..v).filter(|&i| !banned(i)).fold(f32::MIN, |a, i| a.max(l[i]));
    let e: Vec<f64> = (0..v).map(|i| if banned(i) { 0.0 } else { ((l[i] - m) as f64).exp() }).collect();
    let total: f64 = e.iter().sum();
    let weight = |x: f64| if temperature != 1.0 { x.powf(1.0 / temperature as f64) } else { x };
    let mut sorted = e.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // The cutoff, and the range of cutoffs the GPU's rounding could produce instead.
    let (mut cutoff, mut cut_lo, mut cut_hi) = (0.0f64, 0.0f64, 0.0f64);
    if top_p < 1.0 {
        let target = top_p as f64 * total;
        let mut cum = 0.0;
        let mut j = v - 1;
        let (mut lo, mut hi) = (sorted[j], sorted[j]);
        for (i, &s) in sorted.iter().enumerate() {
            let before = cum;
            cum += s;
            if cum >= target {
                j = i;
                (lo, hi) = (s, s);
                if cum - target < BORDERLINE * total && i + 1 < v {
                    lo = sorted[i + 1];
                }
                if i > 0 && target - before < BORDERLINE * total {
                    hi = sorted[i - 1];
                }
                break;
            }
        }
        (cutoff, cut_lo, cut_hi) = (sorted[j], lo, hi);
    }
    let k = p.top_k as usize;
    if k > 0 && k < v {
        let s = sorted[k - 1];
        (cutoff, cut_lo, cut_hi) = (cutoff.max(s), cut_lo.max(s), cut_hi.max(s));
    }
    // Tokens whose membership could flip: those in the band of possible cutoffs, except the
    // top candidate itself when no other value is within rounding of it (it is kept whatever
    // the GPU's cut).
    let in_band = |x: f64| cut_hi > 0.0 && x >= cut_lo * (1.0 - BORDERLINE) && x <= cut_hi * (1.0 + BORDERLINE);
    let near_top = e.iter().filter(|&&x| (x - cut_hi).abs() <= BORDERLINE * cut_hi).count();
    let top = e.iter().position(|&x| x == cut_hi).filter(|_| near_top == 1);
    let uncertain = |i: usize| e[i] > 0.0 && in_band(e[i]) && Some(i) != top;
    let slack: f64 = (0..v).filter(|&i| uncertain(i)).map(|i| weight(e[i])).sum();
    let w: Vec<f64> = e.iter().map(|&x| if x <= 0.0 || x < cutoff { 0.0 } else { weight(x) }).collect();
    let wtotal: f64 = w.iter().sum();
    let margin = slack + BORDERLINE * wtotal;
    let r = draw_uniform(seed, step) as f64 * wtotal;
    // The token: the first whose cumulative weight exceeds r (the last positive one if rounding
    // left r at the total). The candidates: every token whose interval, or (for a token rounding
    // could add to the kept set) whose possible interval, comes within `margin` of r.
    let mut cum = 0.0;
    let mut token = None;
    let mut last_positive = 0;
    let mut candidates = Vec::new();
    for (i, &wi) in w.iter().enumerate() {
        let width = if wi > 0.0 {
            wi
        } else if uncertain(i) {
            weight(e[i])
        } else {
            continue;
        };
        if cum <= r + margin && cum + width >= r - margin {
            candidates.push(i as u32);
        }
        if wi > 0.0 {
            last_positive = i;
            cum += wi;
            if r < cum && token.is_none() {
                token = Some(i);
            }
        }
    }
    let token = token.unwrap_or(last_positive) as u32;
    if !candidates.contains(&token) {
        candidates.push(token);
    }
    candidates.sort_unstable();
    Outcome { token, candidates }
}
