//! Synthetic models read back with the GGUF reader: shapes, types, metadata, copies, determinism, and the
//! same layout as the golden llama.cpp files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ggml_quants::{dequantize_to_vec, QuantFormat};
use gguf_file::{GgmlType, GgufFile, MetadataValue};

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
    // Distinct ranks so that a rank mix-up shows; F = 160 is a multiple of 32 but not of 256 (K-quants fall
    // back for channel_mix_value, whose rows have F values, as for every other matrix with rows of 64).
    ModelShape {
        layers: 2,
        width: 64,
        ffn: 160,
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
    let format = QuantFormat::from_ggml_type_id(t.info.ggml_type.id()).unwrap();
    dequantize_to_vec(format, t.data).unwrap()
}

fn std_dev(v: &[f32]) -> f64 {
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    (v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// Every `--type` value: (name, format of the embedding and projections whose rows are whole blocks, format
/// of the output matrix with rows of 256, format of the LoRA matrices a/v/g, `general.file_type`). Written
/// from the golden quant README's tables and llama.cpp's `llama_tensor_get_type` / `llama_ftype`,
/// independently of `plan.rs` and `file_type.rs`.
const TYPE_TABLE: [(&str, GgmlType, GgmlType, GgmlType, u64); 21] = {
    use GgmlType::*;
    [
        ("f32", F32, F32, F32, 0),
        ("f16", F16, F16, F16, 1),
        ("bf16", BF16, BF16, F32, 32),
        ("q8_0", Q8_0, Q8_0, F32, 7),
        ("q4_0", Q4_0, Q6_K, F32, 2),
        ("q4_1", Q4_1, Q6_K, F32, 3),
        ("q5_0", Q5_0, Q6_K, F32, 8),
        ("q5_1", Q5_1, Q6_K, F32, 9),
        ("q2_k", Q2_K, Q6_K, F32, 10),
        ("q3_k_m", Q3_K, Q6_K, F32, 12),
        ("q4_k_m", Q4_K, Q6_K, F32, 15),
        ("q5_k_m", Q5_K, Q6_K, F32, 17),
        ("q6_k", Q6_K, Q6_K, F32, 18),
        ("iq4_nl", IQ4_NL, Q6_K, F32, 25),
        ("iq4_xs", IQ4_XS, Q6_K, F32, 30),
        ("q3_k", Q3_K, Q3_K, F32, 12),
        ("q4_k", Q4_K, Q4_K, F32, 15),
        ("q5_k", Q5_K, Q5_K, F32, 17),
        ("pure-q4_0", Q4_0, Q4_0, F32, 2),
        ("pure-iq4_xs", IQ4_XS, IQ4_XS, F32, 30),
        ("pure-f16", F16, F16, F32, 1),
    ]
};

/// llama-quantize's fallback for rows that are not whole 256-value blocks (golden quant README).
fn fallback_256(ty: GgmlType) -> GgmlType {
    use GgmlType::*;
    match ty {
        Q2_K | Q3_K => Q4_0,
        Q4_K => Q5_0,
        Q5_K => Q5_1,
        Q6_K => Q8_0,
        IQ4_XS => IQ4_NL,
        other => other,
    }
}

/// The type every tensor must have in a file of type `name` (a row of [`TYPE_TABLE`]), or `None` where
/// llama-quantize refuses the tensor (rows that are not whole 32-value blocks of a type with no fallback).
fn expected_type(name: &str, dims: &[u64], file_type: &str) -> Option<GgmlType> {
    let &(_, matrix, output, lora_type, _) = TYPE_TABLE.iter().find(|row| row.0 == file_type).unwrap();
    let short = name.trim_start_matches("blk.").split_once('.').map_or(name, |(_, rest)| rest);
    let forced_f32 = ["time_mix_w1.weight", "time_mix_w2.weight", "time_mix_lerp_fused.weight"].contains(&short);
    let lora = ["a1", "a2", "v1", "v2", "g1", "g2"].iter().any(|l| short == format!("time_mix_{l}.weight"));
    if dims.len() == 1 || forced_f32 {
        return Some(GgmlType::F32);
    }
    if lora {
        return Some(lora_type);
    }
    let row = dims[0];
    // The golden model's rows of 128: a mix's Q6_K output becomes Q8_0 (README); 256-blocks fall back.
    let want = if name == "output.weight" { output } else { matrix };
    let want = if want.block_size() == 256 && !row.is_multiple_of(256) { fallback_256(want) } else { want };
    if row.is_multiple_of(want.block_size()) {
        Some(want)
    } else if [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS]
        .iter()
        .any(|&k| fallback_256(k) == want && [matrix, output].contains(&k))
    {
        Some(GgmlType::F16)
    } else {
        None
    }
}

fn synth_type(name: &str) -> SynthType {
    name.parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The plan of every type on three shapes: rows of 256 and 1024 (every block fits), the golden model's
/// rows of 128 and 512 (256-value formats fall back), and an FFN of 200 (no 32-value block fits).
#[test]
fn plan_types_follow_llama_quantize_for_every_type() {
    let shapes = [
        ModelShape::with_defaults(2, 256),
        ModelShape::with_defaults(2, 128),
        ModelShape { ffn: 200, ..ModelShape::with_defaults(2, 128) },
    ];
    for &(name, .., ftype) in &TYPE_TABLE {
        let file_type = synth_type(name);
        assert_eq!(file_type.to_string(), name, "names round-trip");
        assert_eq!(u64::from(file_type.llama_ftype()), ftype, "{name}: general.file_type");
        for shape in &shapes {
            let expected: Vec<(String, Option<GgmlType>)> = plan::plan_tensors(shape, SynthType::F32)
                .unwrap()
                .into_iter()
                .map(|t| (t.name.clone(), expected_type(&t.name, &t.dims, name)))
                .collect();
            match plan::plan_tensors(shape, file_type) {
                Ok(plans) => {
                    assert!(expected.iter().all(|e| e.1.is_some()), "{name} {shape:?}: llama-quantize refuses it");
                    for (plan, (_, want)) in plans.iter().zip(&expected) {
                        assert_eq!(Some(plan.ggml_type), *want, "{name}: {} {:?}", plan.name, plan.dims);
                        assert_eq!(plan.format.ggml_type_id(), plan.ggml_type.id(), "{}", plan.name);
                    }
                }
                Err(SynthError::NoFallback { tensor, file_type: t, row_len }) => {
                    let first_refused = expected.iter().find(|e| e.1.is_none()).map(|e| e.0.as_str());
                    assert_eq!(Some(tensor.as_str()), first_refused, "{name} {shape:?}");
                    assert_eq!((t, row_len), (file_type, 200));
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    // The refusal names the tensor and the type.
    let shape = ModelShape { ffn: 200, ..ModelShape::with_defaults(2, 128) };
    let message = plan::plan_tensors(&shape, SynthType::Q4_0).unwrap_err().to_string();
    assert!(message.contains("'blk.0.channel_mix_value.weight'") && message.contains("Q4_0"), "{message}");
}

#[test]
fn type_names_parse() {
    assert_eq!(synth_type("Q4_K_M"), SynthType::Q4_K_M);
    assert_eq!(synth_type("q8"), SynthType::Q8_0);
    assert_eq!(synth_type("q4_k"), SynthType::Pure(QuantFormat::Q4_K));
    assert_eq!(synth_type("pure-q4_k"), SynthType::Pure(QuantFormat::Q4_K));
    assert_eq!(synth_type("PURE-Q8_0"), SynthType::Pure(QuantFormat::Q8_0));
    for bad in ["q4_k_s", "q8_1", "iq2_xxs", "pure-", "pure-q4_k_m", "q4"] {
        let err = bad.parse::<SynthType>().unwrap_err().to_string();
        assert!(err.contains(bad) && err.contains("q4_k_m, q5_k_m"), "{err}");
    }
    assert_eq!(SynthType::names().len(), 18);
}

/// The largest error a format's rounding may leave, relative to the tensor's largest magnitude (about half a
/// quantization step of the format's coarsest grid, with margin for the block scales' own rounding).
fn rounding_bound(ty: GgmlType) -> f32 {
    use GgmlType::*;
    match ty {
        F32 => 0.0,
        F16 => 1e-3,
        BF16 => 8e-3,
        Q8_0 => 0.02,
        Q6_K => 0.04,
        Q5_0 | Q5_1 | Q5_K => 0.06,
        Q4_0 | Q4_1 | Q4_K => 0.12,
        IQ4_NL | IQ4_XS => 0.15,
        Q3_K => 0.25,
        Q2_K => 0.5,
        other => panic!("no rounding bound for {other}"),
    }
}

#[test]
fn tiny_models_of_each_type_read_back() {
    let shape = tiny_shape();
    let mut reference: Option<GgufFile> = None;
    for &(name, .., ftype) in &TYPE_TABLE {
        let file_type = synth_type(name);
        let tmp = TempFile::new(&format!("tiny-{file_type}"));
        let summary = synth(&tmp.0, shape, file_type, 7, 3);
        let want = HParams {
            n_layer: 2,
            n_embd: 64,
            head_size: 64,
            n_head: 1,
            ffn: 160,
            vocab: 65536,
            d_w: 32,
            d_a: 16,
            d_v: 8,
            d_g: 24,
            ln_eps: 1e-5,
        };
        let file = GgufFile::open(&tmp.0).unwrap();
        let hparams = HParams::from_gguf(&file).unwrap();
        assert_eq!(hparams, want);
        crate::tensors::validate_tensors(&file, &hparams).unwrap_or_else(|e| panic!("{file_type}: {e}"));
        assert!(Tokenizer::from_gguf(&file).unwrap() == Tokenizer::world());
        // The model loader accepts it if the engine runs every type in it, and otherwise refuses it naming
        // a tensor of a type it cannot run.
        let runs = file.tensor_infos().iter().all(|t| crate::tensors::gpu_supports(t.ggml_type));
        match ModelFile::open(&tmp.0) {
            Ok(_) if runs => {}
            Err(crate::ModelError::UnsupportedType { tensor, ggml_type, .. }) if !runs => {
                assert_eq!(file.tensor(&tensor).unwrap().info.ggml_type.name(), ggml_type);
                assert!(!crate::tensors::gpu_supports(file.tensor(&tensor).unwrap().info.ggml_type));
            }
            other => panic!("{file_type}: runs = {runs} but the loader says {other:?}"),
        }
        assert_eq!(summary.file_bytes, file.file_len());
        assert_eq!(summary.tensors, file.tensor_infos().len());
        assert_eq!(summary.tensors, 6 + 28 * shape.layers);
        assert_eq!(summary.params, file.tensor_infos().iter().map(|t| t.n_elements()).sum::<u64>());

        assert_eq!(file.metadata("general.architecture").and_then(MetadataValue::as_str), Some("rwkv7"));
        assert_eq!(u64_key(&file, "rwkv7.block_count"), 2);
        assert_eq!(u64_key(&file, "rwkv7.embedding_length"), 64);
        assert_eq!(u64_key(&file, "rwkv7.feed_forward_length"), 160);
        assert_eq!(u64_key(&file, "rwkv7.wkv.head_size"), 64);
        assert_eq!(u64_key(&file, "rwkv7.attention.decay_lora_rank"), 32);
        assert_eq!(u64_key(&file, "rwkv7.attention.iclr_lora_rank"), 16);
        assert_eq!(u64_key(&file, "rwkv7.attention.value_residual_mix_lora_rank"), 8);
        assert_eq!(u64_key(&file, "rwkv7.attention.gate_lora_rank"), 24);
        assert_eq!(u64_key(&file, "general.file_type"), ftype);

        let dims = |name: &str| file.tensor(name).unwrap().info.dims.clone();
        assert_eq!(dims("token_embd.weight"), [64, 65536]);
        assert_eq!(dims("output.weight"), [64, 65536]);
        assert_eq!(dims("blk.1.time_mix_lerp_fused.weight"), [64, 1, 1, 6]);
        assert_eq!(dims("blk.1.time_mix_w1.weight"), [64, 32]);
        assert_eq!(dims("blk.1.time_mix_a2.weight"), [16, 64]);
        assert_eq!(dims("blk.1.time_mix_v1.weight"), [64, 8]);
        assert_eq!(dims("blk.0.time_mix_v1.weight"), [64, 16], "layer 0's v1 is a copy of a1");
        assert_eq!(dims("blk.1.time_mix_g2.weight"), [24, 64]);
        assert_eq!(dims("blk.1.channel_mix_key.weight"), [64, 160]);
        assert_eq!(dims("blk.1.channel_mix_value.weight"), [160, 64]);
        for t in file.tensor_infos() {
            let want = expected_type(&t.name, &t.dims, name);
            assert_eq!(Some(t.ggml_type), want, "{} in a {file_type} file", t.name);
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
                    let tol = rounding_bound(file.tensor(&t.name).unwrap().info.ggml_type);
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
    synth(&a.0, shape, SynthType::Q4_K_M, 11, 1);
    synth(&b.0, shape, SynthType::Q4_K_M, 11, 5);
    synth(&c.0, shape, SynthType::Q4_K_M, 12, 5);
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
    assert!("q9_0".parse::<SynthType>().is_err());
    assert_eq!("Q8_0".parse::<SynthType>().unwrap(), SynthType::Q8_0);
}
