//! The values of each tensor: the pattern of the official RWKV-7 training initialisation (RWKV-LM x070:
//! token-shift ramps, decay ramp plus zigzag, base values of a0, v0, k_k, k_a, r_k, ln_x growing with depth)
//! plus random variation, and non-zero random matrices where the official init has zeros, with spreads
//! measured on the golden synthetic model. Everything is seeded per tensor, so the values are the same
//! whatever the file type.

use super::rng::Rng;

/// How one tensor's values are made (`n` below is a standard normal draw per element).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Init {
    /// `std · n`.
    Normal { std: f32 },
    /// LayerNorm weight: `1 + 0.15 n`.
    NormWeight,
    /// LayerNorm bias: `0.08 n`.
    NormBias,
    /// Six token-shift mixes r, w, k, v, a, g: `1 − (c/C)^(p·(1 − l/L)) + 0.15 n`, p = 0.2 0.9 0.7 0.7 0.9 0.2.
    LerpFused { layer: usize },
    /// Channel-mix token shift: `1 − (c/C)^((1 − l/L)^4) + 0.15 n`.
    LerpChannelMix { layer: usize },
    /// `w0`: `−6 + 6·(c/(C−1))^(1 + (l/(L−1))^0.3) + 0.5 + 2.5·zigzag + 0.2 n`.
    DecayBase { layer: usize },
    /// `a0`: `−0.19 + 0.3·zigzag + 0.4·linear + 0.3 n`.
    IclrBase,
    /// `v0`: `0.73 − 0.4·linear + 0.3 n`.
    ValueMixBase,
    /// `k_k`: `0.71 − 0.1·linear + 0.13 n`.
    KeyNormScale,
    /// `k_a`: `1.02 + 0.25 n`.
    KeyIclrMix,
    /// `r_k`: `−0.04 + 0.13 n`.
    Bonus,
    /// `ln_x` weight: `((1 + l)/L)^0.7 + 0.1 n`.
    GroupNormWeight { layer: usize },
    /// `ln_x` bias: `0.05 n`.
    GroupNormBias,
}

/// The model-wide sizes the per-channel patterns depend on.
#[derive(Clone, Copy, Debug)]
pub(super) struct InitContext {
    pub width: usize,
    pub head_size: usize,
    pub layers: usize,
}

/// Values per chunk of a random matrix: chunks are generated in parallel, each from its own stream.
const CHUNK_ELEMENTS: usize = 1 << 20;

impl Init {
    /// Scale of the residual-stream writers (attention output, FFN value) so that the L layers together add
    /// a variance independent of depth: `sqrt(2 / max(L, 2))` (1 for the two-layer golden model).
    pub(super) fn depth_scale(layers: usize) -> f32 {
        (2.0 / layers.max(2) as f32).sqrt()
    }

    /// Rows generated together from one random stream: about a million values for random matrices, the
    /// whole tensor for the per-channel patterns.
    pub(super) fn chunk_rows(&self, row_len: usize, rows: usize) -> usize {
        match self {
            Init::Normal { .. } => (CHUNK_ELEMENTS / row_len.max(1)).clamp(1, rows.max(1)),
            _ => rows.max(1),
        }
    }

    /// Fills `out` with the values of elements `first..first + out.len()` of the tensor (flat, ggml order),
    /// drawing from `rng`.
    pub(super) fn fill(&self, ctx: &InitContext, rng: &mut Rng, first: usize, out: &mut [f32]) {
        if let Init::Normal { std } = *self {
            out.iter_mut().for_each(|v| *v = std * rng.normal());
            return;
        }
        let c_len = ctx.width as f32;
        let last = (ctx.width.max(2) - 1) as f32;
        let half_head = (ctx.head_size.max(2) - 1) as f32 / 2.0;
        let layers = ctx.layers as f32;
        for (i, v) in out.iter_mut().enumerate() {
            let e = first + i;
            let c = e % ctx.width;
            let cf = c as f32;
            let n = rng.normal();
            let ddd = cf / c_len;
            let linear = cf / last - 0.5;
            let zz = ((c % ctx.head_size) as f32 - half_head) / half_head;
            let zigzag = zz * zz.abs();
            *v = match *self {
                Init::Normal { std } => std * n,
                Init::NormWeight => 1.0 + 0.15 * n,
                Init::NormBias => 0.08 * n,
                Init::LerpFused { layer } => {
                    const POWERS: [f32; 6] = [0.2, 0.9, 0.7, 0.7, 0.9, 0.2];
                    let slice = (e / ctx.width).min(5);
                    let r1 = 1.0 - layer as f32 / layers;
                    1.0 - ddd.powf(POWERS[slice] * r1) + 0.15 * n
                }
                Init::LerpChannelMix { layer } => {
                    let r1 = 1.0 - layer as f32 / layers;
                    1.0 - ddd.powf(r1.powi(4)) + 0.15 * n
                }
                Init::DecayBase { layer } => {
                    let r01 = if ctx.layers > 1 { layer as f32 / (layers - 1.0) } else { 0.0 };
                    -6.0 + 6.0 * (cf / last).powf(1.0 + r01.powf(0.3)) + 0.5 + 2.5 * zigzag + 0.2 * n
                }
                Init::IclrBase => -0.19 + 0.3 * zigzag + 0.4 * linear + 0.3 * n,
                Init::ValueMixBase => 0.73 - 0.4 * linear + 0.3 * n,
                Init::KeyNormScale => 0.71 - 0.1 * linear + 0.13 * n,
                Init::KeyIclrMix => 1.02 + 0.25 * n,
                Init::Bonus => -0.04 + 0.13 * n,
                Init::GroupNormWeight { layer } => ((1.0 + layer as f32) / layers).powf(0.7) + 0.1 * n,
                Init::GroupNormBias => 0.05 * n,
            };
        }
    }
}
