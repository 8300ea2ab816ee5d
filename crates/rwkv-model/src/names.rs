//! GGUF tensor names of RWKV-7 (llama.cpp's `blk.N.*` scheme), shared by the hyperparameter
//! checks and the tensor table.

/// `blk.{layer}.{suffix}`.
pub fn blk(layer: usize, suffix: &str) -> String {
    format!("blk.{layer}.{suffix}")
}
