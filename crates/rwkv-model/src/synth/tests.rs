//! Synthetic models read back with the GGUF reader: shapes, types, metadata, copies, determinism, and the
//! same layout as the golden llama.cpp files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gguf_file::{to_f32, GgmlType, GgufFile, MetadataValue};

use super::*;
use crate::tokenizer::{world_tokens, Tokenizer};
use crate::{HParams, ModelFile};

/// A file in the temp directory, removed on drop.
pub(super) struct TempFile(pub(super) PathBuf);

impl TempFile {
    pub(super) fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("rwkv-synth-{}-{name}.gguf", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tiny_shape() -> ModelShape {
    // Distinct ranks so that a rank mix-up shows; F = 200 is not a multiple of 32 (Q8_0 falls back to F16
    // for channel_mix_value, whose rows have F values).
    ModelShape {
        layers: 2,
        width: 64,
        ffn: 200,
        head_size: 64,
        ranks: LoraRanks { decay: 32, iclr: 16, value: 8, gate: 24 },
    }
}

fn synth(path: &Path, shape: ModelShape, file_type: SynthType, seed: u64, threads: usize) -> SynthSummary {
    let config = SynthConfig { shape, file_type, seed, threads: Some(threads) };
    let mut last = None;
    let summary = write_synthetic_model(path, &config, &mut |p| {
        assert!(p.bytes_done <= p.bytes_total && p.tensor_index < p.tensor_count);
        last = Some((p.bytes_done, p.bytes_total, p.tensor_index + 1 == p.tensor_count));
    })
    .unwrap();
    let (done, total, at_last_tensor) = last.expect("progress was reported");
    assert!(done == total && at_last_tensor, "progress ends at 100%");
    summary
}

fn u64_key(file: &GgufFile, key: &str) -> u64 {
    file.metadata(key).and_then(MetadataValue::as_u64).unwrap_or_else(|| panic!("missing {key}"))
}

fn values(file: &GgufFile, name: &str) -> Vec<f32> {
    let t = file.tensor(name).unwrap_or_else(|| panic!("missing {name}"));
    to_f32(t.info.ggml_type, t.data).unwrap()
}

fn std_dev(v: &[f32]) -> f64 {
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    (v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// The type every tensor must have in a file of `file_type` (the rule of llama.cpp's converter and
/// llama-quantize, written out independently of `plan.rs`).
fn expected_type(name: &str, dims: &[u64], file_type: SynthType) -> GgmlType {
    let short = name.trim_start_matches("blk.").split_once('.').map_or(name, |(_, rest)| rest);
    let forced_f32 = ["time_mix_w1.weight", "time_mix_w2.weight", "time_mix_lerp_fused.weight"].contains(&short);
    let lora = ["a1", "a2", "v1", "v2", "g1", "g2"].iter().any(|l| short == format!("time_mix_{l}.weight"));
    match file_type {
        _ if dims.len() == 1 || forced_f32 => GgmlType::F32,
        SynthType::F32 => GgmlType::F32,
        SynthType::F16 => GgmlType::F16,
        SynthType::Q8_0 if lora || !dims[0].is_multiple_of(32) => GgmlType::F16,
        SynthType::Q8_0 => GgmlType::Q8_0,
    }
}

#[test]
fn tiny_models_of_each_type_read_back() {
    let shape = tiny_shape();
    let mut reference: Option<GgufFile> = None;
    for file_type in [SynthType::F32, SynthType::F16, SynthType::Q8_0] {
        let tmp = TempFile::new(&format!("tiny-{file_type}"));
        let summary = synth(&tmp.0, shape, file_type, 7, 3);
        // The model-file loader accepts it (architecture, hyperparameters, full tensor table, types).
        let model = ModelFile::open(&tmp.0).unwrap_or_else(|e| panic!("{file_type}: {e}"));
        let want = HParams {
            n_layer: 2,
            n_embd: 64,
            head_size: 64,
            n_head: 1,
            ffn: 200,
            vocab: 65536,
            d_w: 32,
            d_a: 16,
            d_v: 8,
            d_g: 24,
            ln_eps: 1e-5,
        };
        assert_eq!(model.hparams(), &want);
        assert!(Tokenizer::from_gguf(model.gguf()).unwrap() == Tokenizer::world());
        drop(model);
        let file = GgufFile::open(&tmp.0).unwrap();
        assert_eq!(summary.file_bytes, file.file_len());
        assert_eq!(summary.tensors, file.tensor_infos().len());
        assert_eq!(summary.tensors, 6 + 28 * shape.layers);
        assert_eq!(summary.params, file.tensor_infos().iter().map(|t| t.n_elements()).sum::<u64>());

        assert_eq!(file.metadata("general.architecture").and_then(MetadataValue::as_str), Some("rwkv7"));
        assert_eq!(u64_key(&file, "rwkv7.block_count"), 2);
        assert_eq!(u64_key(&file, "rwkv7.embedding_length"), 64);
        assert_eq!(u64_key(&file, "rwkv7.feed_forward_length"), 200);
        assert_eq!(u64_key(&file, "rwkv7.wkv.head_size"), 64);
        assert_eq!(u64_key(&file, "rwkv7.attention.decay_lora_rank"), 32);
        assert_eq!(u64_key(&file, "rwkv7.attention.iclr_lora_rank"), 16);
        assert_eq!(u64_key(&file, "rwkv7.attention.value_residual_mix_lora_rank"), 8);
        assert_eq!(u64_key(&file, "rwkv7.attention.gate_lora_rank"), 24);
        let file_type_id = match file_type {
            SynthType::F32 => 0,
            SynthType::F16 => 1,
            SynthType::Q8_0 => 7,
        };
        assert_eq!(u64_key(&file, "general.file_type"), file_type_id);

        let dims = |name: &str| file.tensor(name).unwrap().info.dims.clone();
        assert_eq!(dims("token_embd.weight"), [64, 65536]);
        assert_eq!(dims("output.weight"), [64, 65536]);
        assert_eq!(dims("blk.1.time_mix_lerp_fused.weight"), [64, 1, 1, 6]);
        assert_eq!(dims("blk.1.time_mix_w1.weight"), [64, 32]);
        assert_eq!(dims("blk.1.time_mix_a2.weight"), [16, 64]);
        assert_eq!(dims("blk.1.time_mix_v1.weight"), [64, 8]);
        assert_eq!(dims("blk.0.time_mix_v1.weight"), [64, 16], "layer 0's v1 is a copy of a1");
        assert_eq!(dims("blk.1.time_mix_g2.weight"), [24, 64]);
        assert_eq!(dims("blk.1.channel_mix_key.weight"), [64, 200]);
        assert_eq!(dims("blk.1.channel_mix_value.weight"), [200, 64]);
        for t in file.tensor_infos() {
            assert_eq!(t.ggml_type, expected_type(&t.name, &t.dims, file_type), "{} in a {file_type} file", t.name);
        }
        for (v, a) in [("v0", "a0"), ("v1", "a1"), ("v2", "a2")] {
            let v = file.tensor(&format!("blk.0.time_mix_{v}.weight")).unwrap();
            let a = file.tensor(&format!("blk.0.time_mix_{a}.weight")).unwrap();
            assert_eq!((v.info.ggml_type, v.data), (a.info.ggml_type, a.data), "blk.0 {v:?} copies {a:?}");
        }
        assert_ne!(values(&file, "blk.1.time_mix_v0.weight"), values(&file, "blk.1.time_mix_a0.weight"));

        // Same values whatever the storage type, up to its rounding.
        match &reference {
            None => reference = Some(file),
            Some(f32_file) => {
                for t in f32_file.tensor_infos() {
                    let (want, got) = (values(f32_file, &t.name), values(&file, &t.name));
                    let tol = match file.tensor(&t.name).unwrap().info.ggml_type {
                        GgmlType::F32 => 0.0,
                        GgmlType::F16 => 1e-3,
                        _ => 0.02,
                    };
                    let max_abs = want.iter().fold(0f32, |m, x| m.max(x.abs()));
                    for (w, g) in want.iter().zip(&got) {
                        assert!((w - g).abs() <= tol * max_abs, "{}: {w} vs {g}", t.name);
                    }
                }
            }
        }
    }
}

#[test]
fn deterministic_whatever_the_thread_count_and_seed_dependent() {
    let shape = ModelShape { layers: 1, ..tiny_shape() };
    let (a, b, c) = (TempFile::new("det-a"), TempFile::new("det-b"), TempFile::new("det-c"));
    synth(&a.0, shape, SynthType::Q8_0, 11, 1);
    synth(&b.0, shape, SynthType::Q8_0, 11, 5);
    synth(&c.0, shape, SynthType::Q8_0, 12, 5);
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert!(read(&a.0) == read(&b.0), "same seed, different thread counts: identical files");
    let (fa, fc) = (GgufFile::open(&a.0).unwrap(), GgufFile::open(&c.0).unwrap());
    for t in fa.tensor_infos() {
        assert_ne!(fa.tensor(&t.name).unwrap().data, fc.tensor(&t.name).unwrap().data, "{} ignores the seed", t.name);
    }
}

/// The golden model's shape, synthesized, has exactly the golden files' metadata keys (with the same value
/// types, the same tokenizer entries) and the same tensors with the same shapes and (for F16) types; its
/// weights have the golden spreads.
#[test]
fn golden_shape_matches_golden_files() {
    let shape = ModelShape::with_defaults(2, 128);
    let golden = GgufFile::open(test_data::golden("model-f16.gguf")).unwrap();
    let tmp = TempFile::new("golden-shape");
    synth(&tmp.0, shape, SynthType::F16, 19, 2);
    let ours = GgufFile::open(&tmp.0).unwrap();

    let keys = |f: &GgufFile| -> BTreeMap<String, String> {
        f.metadata_entries().map(|(k, v)| (k.to_owned(), v.value_type().name().to_owned())).collect()
    };
    assert_eq!(keys(&ours), keys(&golden));
    for key in golden.metadata_entries().map(|(k, _)| k) {
        if !["general.name", "general.size_label"].contains(&key) {
            assert_eq!(ours.metadata(key), golden.metadata(key), "{key}");
        }
    }
    let tokens = ours.metadata("tokenizer.ggml.tokens").and_then(MetadataValue::as_array).unwrap();
    assert_eq!(tokens.as_strings().unwrap(), world_tokens());

    let infos = |f: &GgufFile| -> BTreeMap<String, (Vec<u64>, GgmlType)> {
        f.tensor_infos().iter().map(|t| (t.name.clone(), (t.dims.clone(), t.ggml_type))).collect()
    };
    assert_eq!(infos(&ours), infos(&golden));

    // Spreads of the random matrices within 25% of the golden model's (same init recipe).
    for name in [
        "token_embd.weight",
        "output.weight",
        "blk.1.time_mix_receptance.weight",
        "blk.1.time_mix_key.weight",
        "blk.1.time_mix_output.weight",
        "blk.1.time_mix_w2.weight",
        "blk.1.time_mix_g2.weight",
        "blk.1.channel_mix_value.weight",
        "blk.1.time_mix_w0.weight",
        "blk.1.time_mix_lerp_fused.weight",
        "blk.0.time_mix_ln.weight",
    ] {
        let (g, o) = (std_dev(&values(&golden, name)), std_dev(&values(&ours, name)));
        assert!((o / g - 1.0).abs() < 0.25, "{name}: std {o} vs golden {g}");
    }
    for t in ours.tensor_infos() {
        assert!(values(&ours, &t.name).iter().all(|v| v.is_finite()), "{}", t.name);
        assert!(std_dev(&values(&ours, &t.name)) > 0.01, "{} is (nearly) constant", t.name);
    }
    // The tokenizer built from the synthesized file is the World tokenizer.
    let types = ours.metadata("tokenizer.ggml.token_type").and_then(MetadataValue::as_array).unwrap();
    let types: Vec<i32> = (0..types.len()).map(|i| types.get(i).and_then(|v| v.as_i64()).unwrap() as i32).collect();
    assert!(Tokenizer::from_tokens(tokens.as_strings().unwrap(), Some(&types)).unwrap() == Tokenizer::world());
}

#[test]
fn rejects_bad_shapes_before_writing() {
    let tmp = TempFile::new("bad");
    let config = SynthConfig {
        shape: ModelShape { width: 100, ..tiny_shape() },
        file_type: SynthType::F16,
        seed: 0,
        threads: None,
    };
    assert!(matches!(write_synthetic_model(&tmp.0, &config, &mut |_| {}), Err(SynthError::InvalidShape(_))));
    assert!(!tmp.0.exists());
    assert!("q4_0".parse::<SynthType>().is_err());
    assert_eq!("Q8_0".parse::<SynthType>().unwrap(), SynthType::Q8_0);
}
