//! A CPU reference forward pass of RWKV-7, written for clarity (spec §3), in f32 storage with
//! f64 accumulation. Used by the tests as an independent check of the GPU forward pass.

mod math;
mod weights;

pub use weights::{RefLayer, RefModel};

use math::{dot_rows, group_norm, layer_norm, lerp, sigmoid};

/// The recurrent state of the reference model, all f32, zero at the start of a sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct RefState {
    /// Per layer: the previous token's ln1 output.
    pub shift_att: Vec<Vec<f32>>,
    /// Per layer: the previous token's ln2 output.
    pub shift_ffn: Vec<Vec<f32>>,
    /// Per layer: the WKV state [H, N, N], row i = value channel, column j = key channel.
    pub wkv: Vec<Vec<f32>>,
}

impl RefState {
    /// The all-zero state of a sequence's start, sized for `m`.
    pub fn new(m: &RefModel) -> Self {
        let (l, c, n) = (m.layers.len(), m.c, m.head_size);
        RefState { shift_att: vec![vec![0.0; c]; l], shift_ffn: vec![vec![0.0; c]; l], wkv: vec![vec![0.0; c * n]; l] }
    }
}

impl RefModel {
    /// Feeds one token and returns the logits over the vocabulary.
    pub fn forward(&self, token: u32, state: &mut RefState) -> Vec<f32> {
        self.step(token, state, true).unwrap_or_default()
    }

    /// Feeds one token; computes the logits only when `logits` is true (the head is most of the
    /// work of a small model).
    pub fn step(&self, token: u32, state: &mut RefState, logits: bool) -> Option<Vec<f32>> {
        let c = self.c;
        let row = &self.emb[token as usize * c..(token as usize + 1) * c];
        let mut x = layer_norm(row, &self.ln0_w, &self.ln0_b, self.ln_eps);
        let mut v_first = vec![0.0f32; c];
        for (l, layer) in self.layers.iter().enumerate() {
            self.time_mix(l, layer, &mut x, &mut v_first, state);
            self.channel_mix(l, layer, &mut x, state);
        }
        if !logits {
            return None;
        }
        let xo = layer_norm(&x, &self.ln_out_w, &self.ln_out_b, self.ln_eps);
        Some(dot_rows(&self.head, &xo))
    }

    /// Builds the reference model from a validated model file, dequantising every tensor.
    pub fn from_file(file: &crate::ModelFile) -> Result<RefModel, crate::ModelError> {
        let hp = file.hparams();
        RefModel::from_tensors(hp.n_embd, hp.head_size, hp.n_layer, hp.ln_eps, |name| file.tensor_f32(name))
    }

    fn time_mix(&self, l: usize, w: &RefLayer, x: &mut [f32], v_first: &mut [f32], st: &mut RefState) {
        let (c, n) = (self.c, self.head_size);
        let h_count = c / n;
        // 1-2: LayerNorm and the six token-shift lerps (r, w, k, v, a, g).
        let xa = layer_norm(x, &w.ln1_w, &w.ln1_b, self.ln_eps);
        let prev = std::mem::replace(&mut st.shift_att[l], xa.clone());
        let mix = |j: usize| lerp(&xa, &prev, &w.mix[j * c..(j + 1) * c]);
        let (xr, xw, xk, xv, xa_, xg) = (mix(0), mix(1), mix(2), mix(3), mix(4), mix(5));
        // 3: projections.
        let r = dot_rows(&w.wr, &xr);
        let mut k = dot_rows(&w.wk, &xk);
        let mut v = dot_rows(&w.wv, &xv);
        // 4: decay.
        let hw: Vec<f32> = dot_rows(&w.w1, &xw).iter().map(|v| v.tanh()).collect();
        let z: Vec<f32> = dot_rows(&w.w2, &hw).iter().zip(&w.w0).map(|(a, b)| a + b).collect();
        let decay: Vec<f32> = z.iter().map(|&z| (-0.606531f32 * sigmoid(z)).exp()).collect();
        // 5: in-context learning rate.
        let alpha: Vec<f32> =
            dot_rows(&w.a2, &dot_rows(&w.a1, &xa_)).iter().zip(&w.a0).map(|(a, b)| sigmoid(a + b)).collect();
        // 6: gate.
        let hg: Vec<f32> = dot_rows(&w.g1, &xg).iter().map(|&v| sigmoid(v)).collect();
        let g = dot_rows(&w.g2, &hg);
        // 7: value residual.
        if l == 0 {
            v_first.copy_from_slice(&v);
        } else {
            let gate = dot_rows(&w.v2, &dot_rows(&w.v1, &xv));
            for i in 0..c {
                let s = sigmoid(w.v0[i] + gate[i]);
                v[i] += (v_first[i] - v[i]) * s;
            }
        }
        // 8: normalised key per head, from the unmodified k.
        let mut kk: Vec<f32> = k.iter().zip(&w.k_k).map(|(a, b)| a * b).collect();
        for h in 0..h_count {
            let s = &mut kk[h * n..(h + 1) * n];
            let norm = s.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt().max(1e-12);
            s.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        }
        // 9: the modified key.
        for i in 0..c {
            k[i] *= 1.0 + (alpha[i] - 1.0) * w.k_a[i];
        }
        // 10-11: WKV update and readout per head and row.
        let s = &mut st.wkv[l];
        let mut y = vec![0.0f32; c];
        for h in 0..h_count {
            let o = h * n;
            for i in 0..n {
                let srow = &mut s[(h * n + i) * n..(h * n + i + 1) * n];
                let sa: f64 = (0..n).map(|j| srow[j] as f64 * -(kk[o + j] as f64)).sum();
                let mut acc = 0.0f64;
                for j in 0..n {
                    let b = kk[o + j] * alpha[o + j];
                    srow[j] = srow[j] * decay[o + j] + v[o + i] * k[o + j] + sa as f32 * b;
                    acc += srow[j] as f64 * r[o + j] as f64;
                }
                y[o + i] = acc as f32;
            }
        }
        // 12: GroupNorm per head.
        let mut out = group_norm(&y, &w.lnx_w, &w.lnx_b, n, crate::hparams::GROUP_NORM_EPS);
        // 13: bonus.
        for h in 0..h_count {
            let o = h * n;
            let beta: f64 = (0..n).map(|j| r[o + j] as f64 * k[o + j] as f64 * w.r_k[o + j] as f64).sum();
            for i in 0..n {
                out[o + i] += (beta * v[o + i] as f64) as f32;
            }
        }
        // 14: gate, output projection, residual.
        let gated: Vec<f32> = out.iter().zip(&g).map(|(a, b)| a * b).collect();
        for (xi, d) in x.iter_mut().zip(dot_rows(&w.wo, &gated)) {
            *xi += d;
        }
    }

    fn channel_mix(&self, l: usize, w: &RefLayer, x: &mut [f32], st: &mut RefState) {
        let xf = layer_norm(x, &w.ln2_w, &w.ln2_b, self.ln_eps);
        let prev = std::mem::replace(&mut st.shift_ffn[l], xf.clone());
        let kf = lerp(&xf, &prev, &w.ffn_mix);
        let hidden: Vec<f32> = dot_rows(&w.fk, &kf).iter().map(|&v| v.max(0.0).powi(2)).collect();
        for (xi, d) in x.iter_mut().zip(dot_rows(&w.fv, &hidden)) {
            *xi += d;
        }
    }
}
