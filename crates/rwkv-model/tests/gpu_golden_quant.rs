//! The GPU forward pass on quantized GGUF files against float64 reference logits computed from
//! each file's own dequantized weights (`golden/quant`, see its README): every file there, in the
//! per-tensor type mixes `llama-quantize` makes (Q4_1, IQ4_NL, Q5_0 + Q4_K, Q5_1 + Q5_K,
//! Q4_0 + Q3_K, Q4_0 + Q2_K with Q8_0 heads; Q4_K and IQ4_XS with Q6_K heads), token by token,
//! through prefill and greedily. And BF16: the golden F16 model converted to BF16 here, against
//! the official logits.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use gguf_file::{GgmlType, GgufFile, GgufWriter};
use gpu_core::{ContextOptions, Gpu, LimitsPolicy};
use rwkv_model::gpu::{Logits, Model, ModelOptions, Path as Forward, PrefillCoop};
use rwkv_model::ModelFile;
use support as golden;

/// The README's bar for f32 math on the dequantized weights (about 1e-5 is reached).
const TOL: f32 = 1e-3;
/// Greedy tokens are compared up to the first step whose reference margin is below this.
const MIN_MARGIN: f32 = 2e-3;
/// Prefill chunk (the token-by-token pass is the other path).
const CHUNK: usize = 64;

fn gpu(limits: LimitsPolicy) -> Arc<Gpu> {
    static MAX: OnceLock<Arc<Gpu>> = OnceLock::new();
    static DEFAULT: OnceLock<Arc<Gpu>> = OnceLock::new();
    let cell = if limits == LimitsPolicy::Max { &MAX } else { &DEFAULT };
    let open = || Arc::new(Gpu::new(&ContextOptions { limits, ..Default::default() }).expect("a GPU adapter"));
    cell.get_or_init(open).clone()
}

/// One quantized file and its reference data.
struct Case {
    /// The type key of the README's tables (`q4_k_m`, ...).
    key: String,
    model: PathBuf,
    logits_dir: PathBuf,
    tokens: Vec<u32>,
    positions: Vec<usize>,
    greedy: Vec<u32>,
    margins: Vec<f32>,
}

/// Every `model-<key>.gguf` of `dir`, with its logits, its greedy continuation (`greedy.json`)
/// and the prompt of `tokens_json`. Fails when a file lacks its reference data.
fn cases(dir: &Path, tokens_json: &Path) -> Vec<Case> {
    let prompt = golden::json_file(tokens_json);
    let tokens = golden::token_ids(&prompt["token_ids"]);
    let positions: Vec<usize> =
        prompt["logit_positions"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as usize).collect();
    let greedy = golden::json_file(&dir.join("greedy.json"));
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_prefix("model-").and_then(|n| n.strip_suffix(".gguf")) else { continue };
        let g = &greedy[key];
        assert!(g.is_object(), "{}: no greedy continuation for {key}", dir.display());
        out.push(Case {
            key: key.to_string(),
            model: entry.path(),
            logits_dir: dir.join("logits"),
            tokens: tokens.clone(),
            positions: positions.clone(),
            greedy: golden::token_ids(&g["token_ids"]),
            margins: g["margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap() as f32).collect(),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn load(gpu: Arc<Gpu>, file: &ModelFile, path: Forward) -> Model {
    // f32 math throughout: the exact-math bar.
    let options =
        ModelOptions { path: Some(path), max_chunk: Some(CHUNK), prefill_coop: PrefillCoop::Off, ..Default::default() };
    Model::load(gpu, file, &options, &mut |_| {}).unwrap_or_else(|e| panic!("{}: {e}", file.path().display()))
}

/// Logits at `positions` of `tokens`, fed in chunks of `chunk` tokens (1 = token by token).
fn prompt_logits(model: &Model, tokens: &[u32], positions: &[usize], chunk: usize) -> Vec<Vec<f32>> {
    let state = model.new_state().unwrap();
    let mut out = Vec::new();
    for start in (0..tokens.len()).step_by(chunk) {
        let end = (start + chunk).min(tokens.len());
        let want: Vec<usize> = positions.iter().filter(|&&p| p >= start && p < end).map(|&p| p - start).collect();
        out.extend(model.forward(&state, &tokens[start..end], &Logits::At(want)).unwrap());
    }
    out
}

/// The logits of `case` at its positions token by token and through prefill, then its greedy
/// continuation up to the first step whose reference margin is below [`MIN_MARGIN`].
fn check(case: &Case, gpu: Arc<Gpu>, path: Forward) {
    let file = ModelFile::open(&case.model).unwrap();
    let types: std::collections::BTreeSet<&str> =
        file.gguf().tensor_infos().iter().map(|t| t.ggml_type.name()).collect();
    eprintln!("{}: tensor types {types:?}, {path:?}", case.key);
    let model = load(gpu, &file, path);
    for chunk in [1, CHUNK] {
        let got = prompt_logits(&model, &case.tokens, &case.positions, chunk);
        assert_eq!(got.len(), case.positions.len());
        for (logits, p) in got.iter().zip(&case.positions) {
            let want = golden::logits_file(&case.logits_dir.join(format!("numpy_f64_{}_pos{p}.f32", case.key)));
            golden::assert_logits_close(&format!("{} chunk {chunk} pos {p}", case.key), logits, &want, TOL);
        }
    }
    let state = model.new_state().unwrap();
    let mut logits = model.forward(&state, &case.tokens, &Logits::Last).unwrap().remove(0);
    let steps = case.margins.iter().position(|&m| m < MIN_MARGIN).unwrap_or(case.greedy.len());
    assert!(steps > 0, "{}: the first greedy step is already ambiguous", case.key);
    for (i, &want) in case.greedy[..steps].iter().enumerate() {
        let t = golden::argmax(&logits) as u32;
        assert_eq!(t, want, "{}: greedy step {i} (reference margin {})", case.key, case.margins[i]);
        logits = model.forward(&state, &[t], &Logits::Last).unwrap().remove(0);
    }
    eprintln!("{}: {steps} greedy tokens equal", case.key);
}

#[test]
fn golden_model_quantized_files_match_their_dequantized_reference() {
    let Some(dir) = golden::quant_dir("golden_model_quantized_files_match_their_dequantized_reference") else {
        return;
    };
    let all = cases(&dir, &golden::dir().join("tokens.json"));
    assert!(all.len() >= 6, "{}: expected the six golden-model files, found {}", dir.display(), all.len());
    for case in &all {
        check(case, gpu(LimitsPolicy::Max), Forward::Fused);
    }
}

#[test]
fn w256_quantized_files_match_their_dequantized_reference() {
    let Some(dir) = golden::quant_dir("w256_quantized_files_match_their_dequantized_reference") else { return };
    let dir = dir.join("w256");
    let all = cases(&dir, &dir.join("tokens.json"));
    assert!(all.len() >= 2, "{}: expected the two w256 files, found {}", dir.display(), all.len());
    // The unfused path under WebGPU's default limits (the golden model takes the fused one).
    for case in &all {
        check(case, gpu(LimitsPolicy::Default), Forward::Plain);
    }
}

/// A temporary file removed on drop.
struct Temp(PathBuf);
impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn bf16_copy_of_the_f16_model_matches_official() {
    // Every F16 weight of the golden model is exactly a BF16 value, so the copy computes the
    // same model: it is held to the F16 model's bar against the official logits.
    let src = GgufFile::open(golden::model("model-f16.gguf")).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata_entries() {
        if k != "general.file_type" {
            w.set(k, v.clone());
        }
    }
    w.set("general.file_type", 32u32); // LLAMA_FTYPE_MOSTLY_BF16
    let mut converted = 0;
    for t in src.tensors() {
        if t.info.ggml_type != GgmlType::F16 {
            w.add_tensor(t.info.name.clone(), t.info.ggml_type, &t.info.dims, t.data);
            continue;
        }
        let values = ggml_quants::dequantize_to_vec(ggml_quants::QuantFormat::F16, t.data).unwrap();
        let bf16 = ggml_quants::quantize_to_vec(ggml_quants::QuantFormat::BF16, &values).unwrap();
        let back = ggml_quants::dequantize_to_vec(ggml_quants::QuantFormat::BF16, &bf16).unwrap();
        assert!(back == values, "{}: an F16 weight is not a BF16 value", t.info.name);
        w.add_tensor(t.info.name.clone(), GgmlType::BF16, &t.info.dims, bf16);
        converted += 1;
    }
    let tmp = Temp(std::env::temp_dir().join(format!("rwkv-bf16-copy-{}.gguf", std::process::id())));
    w.write_file(&tmp.0).unwrap();
    let file = ModelFile::open(&tmp.0).unwrap();
    let bf16_tensors = file.gguf().tensor_infos().iter().filter(|t| t.ggml_type == GgmlType::BF16).count();
    assert_eq!(bf16_tensors, converted);
    assert!(file.tensor("token_embd.weight").unwrap().dtype == GgmlType::BF16, "the embedding is BF16 too");
    let model = load(gpu(LimitsPolicy::Max), &file, Forward::Fused);
    let (tokens, positions) = golden::prompt();
    for chunk in [1, CHUNK] {
        let got = prompt_logits(&model, &tokens, &positions, chunk);
        for (logits, p) in got.iter().zip(&positions) {
            let want = golden::logits(&format!("official_fp32_pos{p}.f32"));
            golden::assert_logits_close(&format!("bf16 chunk {chunk} pos {p}"), logits, &want, TOL);
        }
    }
}
