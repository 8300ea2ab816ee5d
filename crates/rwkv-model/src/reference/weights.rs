//! The reference model's weights: every tensor dequantised to f32, in GGUF row order.

/// One layer's tensors. Matrices are row-major with the GGUF convention (ne = [K, M] is M rows of
/// K values), so `dot_rows(W, x)` is the projection.
#[derive(Clone, Debug)]
pub struct RefLayer {
    pub ln1_w: Vec<f32>,
    pub ln1_b: Vec<f32>,
    pub ln2_w: Vec<f32>,
    pub ln2_b: Vec<f32>,
    /// [6, C]: r, w, k, v, a, g.
    pub mix: Vec<f32>,
    pub w0: Vec<f32>,
    pub w1: Vec<f32>,
    pub w2: Vec<f32>,
    pub a0: Vec<f32>,
    pub a1: Vec<f32>,
    pub a2: Vec<f32>,
    pub v0: Vec<f32>,
    pub v1: Vec<f32>,
    pub v2: Vec<f32>,
    pub g1: Vec<f32>,
    pub g2: Vec<f32>,
    pub k_k: Vec<f32>,
    pub k_a: Vec<f32>,
    pub r_k: Vec<f32>,
    pub wr: Vec<f32>,
    pub wk: Vec<f32>,
    pub wv: Vec<f32>,
    pub wo: Vec<f32>,
    pub lnx_w: Vec<f32>,
    pub lnx_b: Vec<f32>,
    pub ffn_mix: Vec<f32>,
    pub fk: Vec<f32>,
    pub fv: Vec<f32>,
}

/// A whole model for the reference forward pass.
#[derive(Clone, Debug)]
pub struct RefModel {
    pub c: usize,
    pub head_size: usize,
    pub ln_eps: f32,
    pub emb: Vec<f32>,
    pub ln0_w: Vec<f32>,
    pub ln0_b: Vec<f32>,
    pub layers: Vec<RefLayer>,
    pub ln_out_w: Vec<f32>,
    pub ln_out_b: Vec<f32>,
    pub head: Vec<f32>,
}

impl RefModel {
    /// Builds the model from a tensor source: `get(name)` returns the tensor dequantised to f32.
    pub fn from_tensors<E>(
        c: usize,
        head_size: usize,
        n_layer: usize,
        ln_eps: f32,
        mut get: impl FnMut(&str) -> Result<Vec<f32>, E>,
    ) -> Result<RefModel, E> {
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let mut t = |s: &str| get(&format!("blk.{i}.{s}"));
            layers.push(RefLayer {
                ln1_w: t("attn_norm.weight")?,
                ln1_b: t("attn_norm.bias")?,
                ln2_w: t("attn_norm_2.weight")?,
                ln2_b: t("attn_norm_2.bias")?,
                mix: t("time_mix_lerp_fused.weight")?,
                w0: t("time_mix_w0.weight")?,
                w1: t("time_mix_w1.weight")?,
                w2: t("time_mix_w2.weight")?,
                a0: t("time_mix_a0.weight")?,
                a1: t("time_mix_a1.weight")?,
                a2: t("time_mix_a2.weight")?,
                v0: t("time_mix_v0.weight")?,
                v1: t("time_mix_v1.weight")?,
                v2: t("time_mix_v2.weight")?,
                g1: t("time_mix_g1.weight")?,
                g2: t("time_mix_g2.weight")?,
                k_k: t("time_mix_k_k.weight")?,
                k_a: t("time_mix_k_a.weight")?,
                r_k: t("time_mix_r_k.weight")?,
                wr: t("time_mix_receptance.weight")?,
                wk: t("time_mix_key.weight")?,
                wv: t("time_mix_value.weight")?,
                wo: t("time_mix_output.weight")?,
                lnx_w: t("time_mix_ln.weight")?,
                lnx_b: t("time_mix_ln.bias")?,
                ffn_mix: t("channel_mix_lerp_k.weight")?,
                fk: t("channel_mix_key.weight")?,
                fv: t("channel_mix_value.weight")?,
            });
        }
        Ok(RefModel {
            c,
            head_size,
            ln_eps,
            emb: get("token_embd.weight")?,
            ln0_w: get("token_embd_norm.weight")?,
            ln0_b: get("token_embd_norm.bias")?,
            layers,
            ln_out_w: get("output_norm.weight")?,
            ln_out_b: get("output_norm.bias")?,
            head: get("output.weight")?,
        })
    }
}
