//! The reference model's weights: every tensor dequantised to f32, in GGUF row order.

/// One layer's tensors. Matrices are row-major with the GGUF convention (ne = [K, M] is M rows of
/// K values), so `dot_rows(W, x)` is the projection. Shapes below are [rows, columns] (GGUF names
/// without `blk.{i}.` and `.weight`; symbols of the spec, §3).
#[derive(Clone, Debug)]
pub struct RefLayer {
    /// `attn_norm.weight` `[C]`: ln1's scale (time mix input).
    pub ln1_w: Vec<f32>,
    /// `attn_norm.bias` `[C]`: ln1's bias.
    pub ln1_b: Vec<f32>,
    /// `attn_norm_2.weight` `[C]`: ln2's scale (channel mix input).
    pub ln2_w: Vec<f32>,
    /// `attn_norm_2.bias` `[C]`: ln2's bias.
    pub ln2_b: Vec<f32>,
    /// `time_mix_lerp_fused` `[6, C]`: the token-shift mixes μ of r, w, k, v, a, g.
    pub mix: Vec<f32>,
    /// `time_mix_w0` `[C]`: the decay bias w0.
    pub w0: Vec<f32>,
    /// `time_mix_w1` `[D_w, C]`: decay LoRA, first stage (C→D_w).
    pub w1: Vec<f32>,
    /// `time_mix_w2` `[C, D_w]`: decay LoRA, second stage (D_w→C).
    pub w2: Vec<f32>,
    /// `time_mix_a0` `[C]`: the in-context learning rate bias a0.
    pub a0: Vec<f32>,
    /// `time_mix_a1` `[D_a, C]`: ICLR LoRA, first stage.
    pub a1: Vec<f32>,
    /// `time_mix_a2` `[C, D_a]`: ICLR LoRA, second stage.
    pub a2: Vec<f32>,
    /// `time_mix_v0` `[C]`: the value-residual mix bias v0 (unused in layer 0).
    pub v0: Vec<f32>,
    /// `time_mix_v1` `[D_v, C]`: value-residual mix LoRA, first stage (unused in layer 0).
    pub v1: Vec<f32>,
    /// `time_mix_v2` `[C, D_v]`: value-residual mix LoRA, second stage (unused in layer 0).
    pub v2: Vec<f32>,
    /// `time_mix_g1` `[D_g, C]`: gate LoRA, first stage.
    pub g1: Vec<f32>,
    /// `time_mix_g2` `[C, D_g]`: gate LoRA, second stage.
    pub g2: Vec<f32>,
    /// `time_mix_k_k` `[C]`: k_k, the key scale before normalisation (κ = k ⊙ k_k).
    pub k_k: Vec<f32>,
    /// `time_mix_k_a` `[C]`: k_a, how much the ICLR modifies the key.
    pub k_a: Vec<f32>,
    /// `time_mix_r_k` `[H·N]`: r_k, the per-channel weights of the bonus term.
    pub r_k: Vec<f32>,
    /// `time_mix_receptance` `[C, C]`: W_r.
    pub wr: Vec<f32>,
    /// `time_mix_key` `[C, C]`: W_k.
    pub wk: Vec<f32>,
    /// `time_mix_value` `[C, C]`: W_v.
    pub wv: Vec<f32>,
    /// `time_mix_output` `[C, C]`: W_o.
    pub wo: Vec<f32>,
    /// `time_mix_ln.weight` `[C]`: the GroupNorm scale γ_lnx.
    pub lnx_w: Vec<f32>,
    /// `time_mix_ln.bias` `[C]`: the GroupNorm bias β_lnx.
    pub lnx_b: Vec<f32>,
    /// `channel_mix_lerp_k` `[C]`: the channel mix's token-shift mix μ_k.
    pub ffn_mix: Vec<f32>,
    /// `channel_mix_key` `[F, C]`: W_fk (C→F).
    pub fk: Vec<f32>,
    /// `channel_mix_value` `[C, F]`: W_fv (F→C).
    pub fv: Vec<f32>,
}

/// A whole model for the reference forward pass.
#[derive(Clone, Debug)]
pub struct RefModel {
    /// C: embedding width.
    pub c: usize,
    /// N: head size.
    pub head_size: usize,
    /// LayerNorm epsilon (ln0, ln1, ln2, ln_out).
    pub ln_eps: f32,
    /// `token_embd` `[V, C]`: the embedding table, row = token.
    pub emb: Vec<f32>,
    /// `token_embd_norm.weight` `[C]`: ln0's scale.
    pub ln0_w: Vec<f32>,
    /// `token_embd_norm.bias` `[C]`: ln0's bias.
    pub ln0_b: Vec<f32>,
    /// The layers, in order.
    pub layers: Vec<RefLayer>,
    /// `output_norm.weight` `[C]`: ln_out's scale.
    pub ln_out_w: Vec<f32>,
    /// `output_norm.bias` `[C]`: ln_out's bias.
    pub ln_out_b: Vec<f32>,
    /// `output` `[V, C]`: the head W_head (C→V).
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
