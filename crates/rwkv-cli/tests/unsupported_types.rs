//! Models holding a ggml type the engine cannot run are refused when opened, before any upload, with an
//! error naming the file, the tensor and its type, and a non-zero exit status (never a panic); `info`
//! still describes them (a synthetic F32 model re-written with an IQ2_XXS tensor, a type outside the
//! supported list). A synthetic Q4_K model (with llama-quantize's Q5_0 fallback) runs.

mod support;

use gguf_file::{GgmlType, GgufFile, GgufWriter};
use support::{cli, tmp};

/// Removes the file however the test ends.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A one-layer model of width 64 and FFN 256 (`channel_mix_value` has rows of 256) written by `synth`.
fn synth(name: &str, ty: &str) -> TempFile {
    let file = TempFile(tmp(name));
    let p = file.0.to_str().unwrap();
    cli(&["synth", "--layers", "1", "--width", "64", "--ffn", "256", "--type", ty, "--seed", "3", "-o", p]).ok();
    file
}

/// `generate` and `logits` refuse the model naming the file, the tensor and the type; `info` describes it,
/// says why it cannot run, and succeeds.
fn refused_everywhere(model: &TempFile, tensor: &str, ty: &str, why: &str) {
    let p = model.0.to_str().unwrap();
    let named = [p, &format!("tensor '{tensor}' has type {ty}"), why];
    cli(&["generate", "--model", p, "--prompt", "Hello", "--max-tokens", "2"]).fails(1, &named);
    let out = tmp("logits.f32");
    cli(&["logits", "--model", p, "--tokens", "1,2", "--out", out.to_str().unwrap()]).fails(1, &named);
    assert!(!out.exists(), "nothing was computed");
    let info = cli(&["info", p]).ok();
    assert!(info.stdout.contains("hyperparameters (RWKV-7):"), "a valid RWKV-7 model:\n{}", info.stdout);
    assert!(info.stdout.contains("this engine cannot run this model:"), "{}", info.stdout);
    assert!(info.stdout.contains(&format!("tensor '{tensor}' has type {ty}")), "{}", info.stdout);
}

#[test]
fn a_k_quant_model_runs() {
    let model = synth("pure-q4_k.gguf", "q4_k");
    let file = GgufFile::open(&model.0).unwrap();
    // Rows of 64 fall back to Q5_0 (llama-quantize's rule); the FFN value matrix's rows of 256 are Q4_K.
    let ty = |name: &str| file.tensor(name).unwrap().info.ggml_type;
    assert_eq!(ty("blk.0.channel_mix_value.weight"), GgmlType::Q4_K);
    assert_eq!(ty("token_embd.weight"), GgmlType::Q5_0);
    let p = model.0.to_str().unwrap();
    let generated =
        cli(&["generate", "--model", p, "--prompt", "Hello", "--max-tokens", "2", "--temperature", "0"]).ok();
    assert!(!generated.stderr.contains("panicked"), "{}", generated.stderr);
    let info = cli(&["info", p]).ok();
    assert!(!info.stdout.contains("cannot run"), "{}", info.stdout);
}

#[test]
fn an_iq2_xxs_tensor_is_refused() {
    let model = synth("f32.gguf", "f32");
    let file = GgufFile::open(&model.0).unwrap();
    let rewritten = TempFile(tmp("iq2_xxs.gguf"));
    // IQ2_XXS: 66 bytes per 256 values; the bytes are arbitrary, they are never decoded.
    rewrite(&file, &rewritten.0, |name, ty, data| match name {
        "blk.0.channel_mix_value.weight" => (GgmlType::IQ2_XXS, vec![7u8; 64 * 66]),
        _ => (ty, data.to_vec()),
    });
    drop(file);
    refused_everywhere(&rewritten, "blk.0.channel_mix_value.weight", "IQ2_XXS", "the engine has no kernels for it");
}

/// Writes `file`'s metadata and tensors to `path`, each tensor through `edit(name, type, bytes)`.
fn rewrite(file: &GgufFile, path: &std::path::Path, edit: impl Fn(&str, GgmlType, &[u8]) -> (GgmlType, Vec<u8>)) {
    let mut w = GgufWriter::new();
    for (key, value) in file.metadata_entries() {
        w.set(key, value.clone());
    }
    for t in file.tensors() {
        let (ty, bytes) = edit(&t.info.name, t.info.ggml_type, t.data);
        w.add_tensor(&t.info.name, ty, &t.info.dims, bytes);
    }
    w.write_file(path).unwrap();
}
