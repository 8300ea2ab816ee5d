//! A plain CPU RWKV-7 forward pass (spec §3, one token at a time, f64 sums), used only by tests to check
//! that synthetic models behave like the golden one. It is checked itself against the official logits.

use gguf_file::{to_f32, GgufFile, MetadataValue};

struct Layer {
    ln1: (Vec<f32>, Vec<f32>),
    ln2: (Vec<f32>, Vec<f32>),
    lerp: Vec<f32>,
    w: (Vec<f32>, Vec<f32>, Vec<f32>),
    a: (Vec<f32>, Vec<f32>, Vec<f32>),
    v: (Vec<f32>, Vec<f32>, Vec<f32>),
    g: (Vec<f32>, Vec<f32>),
    k_k: Vec<f32>,
    k_a: Vec<f32>,
    r_k: Vec<f32>,
    wr: Vec<f32>,
    wk: Vec<f32>,
    wv: Vec<f32>,
    wo: Vec<f32>,
    ln_x: (Vec<f32>, Vec<f32>),
    lerp_k: Vec<f32>,
    fk: Vec<f32>,
    fv: Vec<f32>,
}

/// Weights (dequantized to f32) and recurrent state.
pub(super) struct CpuModel {
    c: usize,
    n: usize,
    emb: Vec<f32>,
    ln0: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    ln_out: (Vec<f32>, Vec<f32>),
    head: Vec<f32>,
    shift_a: Vec<Vec<f32>>,
    shift_f: Vec<Vec<f32>>,
    wkv: Vec<Vec<f32>>,
}

fn ln(x: &[f32], (w, b): &(Vec<f32>, Vec<f32>), eps: f64) -> Vec<f32> {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    x.iter().zip(w).zip(b).map(|((&v, &w), &b)| ((f64::from(v) - mean) * inv) as f32 * w + b).collect()
}

/// `y[m] = Σ_k W[m·K + k]·x[k]` for W with ne [K, M].
fn mv(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len())
        .map(|row| row.iter().zip(x).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>() as f32)
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl CpuModel {
    pub(super) fn load(file: &GgufFile) -> CpuModel {
        let get = |name: &str| {
            let t = file.tensor(name).unwrap_or_else(|| panic!("missing {name}"));
            to_f32(t.info.ggml_type, t.data).unwrap()
        };
        let pair = |p: &str| (get(&format!("{p}.weight")), get(&format!("{p}.bias")));
        let key = |k: &str| file.metadata(k).and_then(MetadataValue::as_u64).unwrap() as usize;
        let (c, n, l) = (key("rwkv7.embedding_length"), key("rwkv7.wkv.head_size"), key("rwkv7.block_count"));
        let layers = (0..l)
            .map(|i| {
                let t = |s: &str| get(&format!("blk.{i}.time_mix_{s}.weight"));
                Layer {
                    ln1: pair(&format!("blk.{i}.attn_norm")),
                    ln2: pair(&format!("blk.{i}.attn_norm_2")),
                    lerp: t("lerp_fused"),
                    w: (t("w0"), t("w1"), t("w2")),
                    a: (t("a0"), t("a1"), t("a2")),
                    v: (t("v0"), t("v1"), t("v2")),
                    g: (t("g1"), t("g2")),
                    k_k: t("k_k"),
                    k_a: t("k_a"),
                    r_k: t("r_k"),
                    wr: t("receptance"),
                    wk: t("key"),
                    wv: t("value"),
                    wo: t("output"),
                    ln_x: pair(&format!("blk.{i}.time_mix_ln")),
                    lerp_k: get(&format!("blk.{i}.channel_mix_lerp_k.weight")),
                    fk: get(&format!("blk.{i}.channel_mix_key.weight")),
                    fv: get(&format!("blk.{i}.channel_mix_value.weight")),
                }
            })
            .collect();
        CpuModel {
            c,
            n,
            emb: get("token_embd.weight"),
            ln0: pair("token_embd_norm"),
            layers,
            ln_out: pair("output_norm"),
            head: get("output.weight"),
            shift_a: vec![vec![0.0; c]; l],
            shift_f: vec![vec![0.0; c]; l],
            wkv: vec![vec![0.0; c * n]; l],
        }
    }

    /// Frobenius norm of each layer's WKV state.
    pub(super) fn state_norms(&self) -> Vec<f64> {
        self.wkv.iter().map(|s| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt()).collect()
    }

    /// Feeds one token; returns the logits if `want_logits`.
    pub(super) fn step(&mut self, token: u32, want_logits: bool) -> Option<Vec<f32>> {
        let (c, n) = (self.c, self.n);
        let t = token as usize;
        let mut x = ln(&self.emb[t * c..(t + 1) * c], &self.ln0, 1e-5);
        let mut v_first = vec![0f32; c];
        for (li, ly) in self.layers.iter().enumerate() {
            let xa = ln(&x, &ly.ln1, 1e-5);
            let d: Vec<f32> = self.shift_a[li].iter().zip(&xa).map(|(s, a)| s - a).collect();
            self.shift_a[li] = xa.clone();
            let mix = |slot: usize| -> Vec<f32> { (0..c).map(|i| xa[i] + d[i] * ly.lerp[slot * c + i]).collect() };
            let (xr, xw, xk, xv, xa_, xg) = (mix(0), mix(1), mix(2), mix(3), mix(4), mix(5));
            let r = mv(&ly.wr, &xr);
            let mut k = mv(&ly.wk, &xk);
            let mut v = mv(&ly.wv, &xv);
            let tw: Vec<f32> = mv(&ly.w.1, &xw).iter().map(|z| z.tanh()).collect();
            let z: Vec<f32> = mv(&ly.w.2, &tw).iter().zip(&ly.w.0).map(|(a, b)| a + b).collect();
            let w: Vec<f32> = z.iter().map(|&z| (-0.606531 * sigmoid(z)).exp()).collect();
            let alpha: Vec<f32> =
                mv(&ly.a.2, &mv(&ly.a.1, &xa_)).iter().zip(&ly.a.0).map(|(a, b)| sigmoid(a + b)).collect();
            let gs: Vec<f32> = mv(&ly.g.0, &xg).iter().map(|&v| sigmoid(v)).collect();
            let g = mv(&ly.g.1, &gs);
            if li == 0 {
                v_first = v.clone();
            } else {
                let m = mv(&ly.v.2, &mv(&ly.v.1, &xv));
                for i in 0..c {
                    v[i] += (v_first[i] - v[i]) * sigmoid(ly.v.0[i] + m[i]);
                }
            }
            let mut kappa: Vec<f32> = (0..c).map(|i| k[i] * ly.k_k[i]).collect();
            for h in kappa.chunks_mut(n) {
                let norm = h.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt().max(1e-12) as f32;
                h.iter_mut().for_each(|v| *v /= norm);
            }
            for i in 0..c {
                k[i] *= 1.0 + (alpha[i] - 1.0) * ly.k_a[i];
            }
            let s = &mut self.wkv[li];
            let mut o = vec![0f32; c];
            for h in 0..c / n {
                let base = h * n;
                for i in 0..n {
                    let row = &mut s[(h * n + i) * n..(h * n + i + 1) * n];
                    let sa: f64 = (0..n).map(|j| f64::from(row[j]) * f64::from(-kappa[base + j])).sum();
                    let mut y = 0f64;
                    for j in 0..n {
                        let b = kappa[base + j] * alpha[base + j];
                        row[j] = row[j] * w[base + j] + v[base + i] * k[base + j] + sa as f32 * b;
                        y += f64::from(row[j]) * f64::from(r[base + j]);
                    }
                    o[base + i] = y as f32;
                }
                let head = &mut o[base..base + n];
                let mean = head.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
                let var = head.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
                let inv = 1.0 / (var + 64e-5).sqrt();
                let bonus: f64 =
                    (0..n).map(|j| f64::from(r[base + j]) * f64::from(k[base + j]) * f64::from(ly.r_k[base + j])).sum();
                for j in 0..n {
                    let normed = ((f64::from(head[j]) - mean) * inv) as f32 * ly.ln_x.0[base + j] + ly.ln_x.1[base + j];
                    head[j] = normed + bonus as f32 * v[base + j];
                }
            }
            let og: Vec<f32> = o.iter().zip(&g).map(|(a, b)| a * b).collect();
            x.iter_mut().zip(mv(&ly.wo, &og)).for_each(|(x, a)| *x += a);

            let xf = ln(&x, &ly.ln2, 1e-5);
            let kf: Vec<f32> = (0..c).map(|i| xf[i] + (self.shift_f[li][i] - xf[i]) * ly.lerp_k[i]).collect();
            self.shift_f[li] = xf;
            let hidden: Vec<f32> = mv(&ly.fk, &kf).iter().map(|&v| v.max(0.0).powi(2)).collect();
            x.iter_mut().zip(mv(&ly.fv, &hidden)).for_each(|(x, a)| *x += a);
        }
        want_logits.then(|| mv(&self.head, &ln(&x, &self.ln_out, 1e-5)))
    }
}
