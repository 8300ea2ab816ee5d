//! Model-file validation on tiny synthetic models: what must load, and one test per class of bad model, each
//! error naming the file, the key or tensor, and what was expected.

mod common;

use common::{build, build_with, encode, tiny_hparams, values, Edit};
use gguf_file::{GgmlType, GgufFile, GgufWriter, MetadataValue};
use rwkv_model::hparams::*;
use rwkv_model::tensors::{blk, expected_tensors, TensorRole};
use rwkv_model::{ModelError, ModelFile};

const LABEL: &str = "tiny.gguf";

fn open(w: &GgufWriter) -> Result<ModelFile, ModelError> {
    ModelFile::from_gguf(GgufFile::from_bytes(LABEL, w.to_bytes().unwrap()).unwrap())
}

fn fails(w: &GgufWriter, needles: &[&str]) -> ModelError {
    let err = open(w).expect_err("the model must be refused");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{LABEL}: ")), "message must name the file: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{msg:?} should contain {n:?}");
    }
    err
}

#[test]
fn every_supported_type_mix_loads_and_reads_back() {
    let hp = tiny_hparams();
    for (matrix, vector) in [
        (GgmlType::F32, GgmlType::F32),
        (GgmlType::F16, GgmlType::F32),
        (GgmlType::Q8_0, GgmlType::F32),
        (GgmlType::Q8_0, GgmlType::F16),
        (GgmlType::F16, GgmlType::Q8_0),
    ] {
        let model = open(&build(&hp, matrix, vector)).unwrap_or_else(|e| panic!("{matrix}/{vector}: {e}"));
        assert_eq!(model.hparams(), &hp);
        assert_eq!(model.path().to_str(), Some(LABEL));
        for e in expected_tensors(&hp) {
            let t = model.tensor(&e.name).unwrap();
            assert_eq!(t.name, e.name);
            assert_eq!(t.shape, &e.ne[..]);
            let got = model.tensor_f32(&e.name).unwrap();
            let want = values(&e.name, t.n_elements() as usize);
            assert_eq!(got.len(), want.len(), "{}", e.name);
            // F32 exact; F16 rounding 2^-11 relative; Q8_0 half a step of absmax/127 (values lie in [-1, 1)).
            let tol = match t.dtype {
                GgmlType::F32 => 0.0,
                GgmlType::F16 => 1.0 / 2048.0,
                GgmlType::Q8_0 => 0.5 / 127.0 + 1e-3,
                other => panic!("unexpected type {other}"),
            };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= tol, "{} [{i}]: {g} vs {w} ({})", e.name, t.dtype);
            }
        }
        assert!(matches!(model.tensor("nope"), Err(ModelError::MissingTensor { .. })));
    }
}

#[test]
fn layer_zero_placeholders_are_accepted_with_any_rank_and_type_or_absent() {
    let hp = tiny_hparams();
    assert_ne!(hp.d_a, hp.d_v);
    // As the converter writes them (rank D_a, not D_v): the default build.
    open(&build(&hp, GgmlType::F16, GgmlType::F32)).unwrap();
    let odd = build_with(&hp, GgmlType::F16, GgmlType::F32, |name| match name {
        "blk.0.time_mix_v1.weight" => Edit::Replace(GgmlType::Q4_0, vec![32, 5, 2]),
        "blk.0.time_mix_v2.weight" => Edit::Replace(GgmlType::BF16, vec![7]),
        _ => Edit::Keep,
    });
    open(&odd).unwrap();
    let absent = build_with(&hp, GgmlType::F16, GgmlType::F32, |name| {
        if ["v0", "v1", "v2"].iter().any(|v| name == format!("blk.0.time_mix_{v}.weight")) {
            Edit::Drop
        } else {
            Edit::Keep
        }
    });
    open(&absent).unwrap();
    // Layer 1's are real: the wrong rank is refused.
    let wrong = build_with(&hp, GgmlType::F16, GgmlType::F32, |name| match name {
        "blk.1.time_mix_v2.weight" => Edit::Replace(GgmlType::F16, vec![hp.d_a as u64, 32]),
        _ => Edit::Keep,
    });
    fails(&wrong, &["'blk.1.time_mix_v2.weight'", "[64, 32]", "[96, 32]"]);
}

#[test]
fn wrong_architecture() {
    let hp = tiny_hparams();
    for (arch, extra) in [("arwkv7", "Qwen-derived"), ("rwkv6", "RWKV-6"), ("llama", "")] {
        let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
        w.set(KEY_ARCHITECTURE, arch);
        let err = fails(&w, &[&format!("architecture '{arch}' is not RWKV-7"), extra]);
        assert!(matches!(err, ModelError::WrongArchitecture { .. }));
    }
    let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
    w.remove(KEY_ARCHITECTURE);
    fails(&w, &["metadata key 'general.architecture' is missing"]);
    w.set(KEY_ARCHITECTURE, 7u32);
    fails(&w, &["'general.architecture' should be a string but is u32 7"]);
}

#[test]
fn missing_tensor() {
    let hp = tiny_hparams();
    for name in ["blk.1.time_mix_k_k.weight", "output.weight", "blk.0.channel_mix_value.weight"] {
        let w = build_with(&hp, GgmlType::F16, GgmlType::F32, |n| if n == name { Edit::Drop } else { Edit::Keep });
        let err = fails(&w, &[&format!("tensor '{name}' is missing")]);
        assert!(matches!(err, ModelError::MissingTensor { .. }));
    }
}

#[test]
fn wrong_shape() {
    let hp = tiny_hparams();
    let cases: [(&str, Vec<u64>); 4] = [
        ("blk.0.channel_mix_value.weight", vec![32, 64]), // transposed
        ("blk.1.time_mix_key.weight", vec![32, 32, 2]),
        ("output.weight", vec![32, 9]),
        ("blk.0.time_mix_lerp_fused.weight", vec![32, 6]),
    ];
    for (name, dims) in cases {
        let w = build_with(&hp, GgmlType::F16, GgmlType::F32, |n| {
            if n == name {
                Edit::Replace(GgmlType::F32, dims.clone())
            } else {
                Edit::Keep
            }
        });
        let expected = expected_tensors(&hp).into_iter().find(|e| e.name == name).unwrap().ne;
        let fmt = |d: &[u64]| format!("{d:?}");
        let err = fails(&w, &[&format!("tensor '{name}'"), &fmt(&dims), &fmt(&expected)]);
        assert!(matches!(err, ModelError::WrongShape { .. }));
    }
    // [C] and [C, 1, 1] are the same shape (llama.cpp declares channel_mix_lerp_k as [C, 1, 1]).
    let w = build_with(&hp, GgmlType::F16, GgmlType::F32, |n| {
        if n.ends_with("channel_mix_lerp_k.weight") {
            Edit::Replace(GgmlType::F32, vec![32, 1, 1])
        } else {
            Edit::Keep
        }
    });
    open(&w).unwrap();
}

#[test]
fn unsupported_types_are_refused_by_name() {
    let hp = tiny_hparams();
    let cases = [
        // Types the kernels have no decoder for (every ggml_quants format loads).
        ("blk.0.time_mix_receptance.weight", GgmlType::Q8_1),
        ("blk.1.channel_mix_key.weight", GgmlType::MXFP4),
        ("token_embd.weight", GgmlType::I8),
        ("blk.0.time_mix_w0.weight", GgmlType::F64),
    ];
    for (name, ty) in cases {
        let w = build_with(&hp, GgmlType::F16, GgmlType::F32, |n| {
            if n == name {
                let dims = expected_tensors(&hp).into_iter().find(|e| e.name == name).unwrap().ne;
                Edit::Replace(ty, dims)
            } else {
                Edit::Keep
            }
        });
        let err = fails(&w, &[&format!("tensor '{name}' has type {ty} (ggml id {})", ty.id()), "not support"]);
        assert!(matches!(err, ModelError::UnsupportedType { .. }));
    }
}

#[test]
fn unknown_extra_tensors_are_refused() {
    let hp = tiny_hparams();
    for extra in ["rope_freqs.weight", "blk.0.time_mix_extra.weight", "blk.x.attn_norm.weight"] {
        let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
        w.add_tensor(extra, GgmlType::F32, &[4], encode(GgmlType::F32, &[4], &[0.0; 4]));
        let err = fails(&w, &[&format!("tensor '{extra}' is not part of an RWKV-7 model")]);
        assert!(matches!(err, ModelError::UnexpectedTensor { .. }));
    }
}

#[test]
fn vocabulary_size_disagreeing_with_the_embedding() {
    let hp = tiny_hparams();
    let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
    w.set(KEY_TOKENS, vec!["a"; 9]);
    let err = fails(&w, &["9 tokens", "token_embd.weight has 8 rows"]);
    assert!(matches!(err, ModelError::VocabMismatch { tokens: 9, rows: 8, .. }));
    w.set(KEY_TOKENS, vec![1u32; 8]);
    fails(&w, &["'tokenizer.ggml.tokens' should be an array of strings but is array[u32; 8]"]);
    // Without a token list the embedding decides.
    w.remove(KEY_TOKENS);
    assert_eq!(open(&w).unwrap().hparams().vocab, 8);
}

#[test]
fn hyperparameters_disagreeing_with_tensor_shapes() {
    let hp = tiny_hparams();
    let cases: [(&str, u32, &str); 6] = [
        (KEY_EMBEDDING_LENGTH, 64, "tensor 'token_embd.weight' has ne[0] = 32"),
        (KEY_FEED_FORWARD_LENGTH, 128, "tensor 'blk.0.channel_mix_key.weight' has ne[1] = 64"),
        (KEY_DECAY_LORA_RANK, 64, "tensor 'blk.0.time_mix_w1.weight' has ne[1] = 32"),
        (KEY_ICLR_LORA_RANK, 32, "tensor 'blk.0.time_mix_a1.weight' has ne[1] = 64"),
        (KEY_VALUE_RESIDUAL_MIX_LORA_RANK, 64, "tensor 'blk.1.time_mix_v1.weight' has ne[1] = 96"),
        (KEY_BLOCK_COUNT, 1, "tensor 'blk.1."),
    ];
    for (key, value, needle) in cases {
        let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
        w.set(key, value);
        let err = fails(&w, &[&format!("metadata key '{key}' = {value}"), needle]);
        assert!(matches!(err, ModelError::HParamMismatch { .. }), "{err}");
    }
    // More blocks declared than present, absurdly many included: refused before anything is sized by it.
    for count in [3u32, u32::MAX] {
        let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
        w.set(KEY_BLOCK_COUNT, count);
        fails(&w, &[&format!("'rwkv7.block_count' = {count}"), "has the highest block index + 1 = 2"]);
    }
    // A block missing below the highest: its tensors are missing.
    let w =
        build_with(
            &hp,
            GgmlType::F16,
            GgmlType::F32,
            |n| if n.starts_with("blk.0.") { Edit::Drop } else { Edit::Keep },
        );
    fails(&w, &["tensor 'blk.0."]);
    // Without the optional gate-rank key the rank comes from the tensor.
    let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
    w.remove(KEY_GATE_LORA_RANK);
    assert_eq!(open(&w).unwrap().hparams().d_g, hp.d_g);
}

#[test]
fn bad_or_missing_hyperparameter_keys() {
    let hp = tiny_hparams();
    let cases: Vec<(&str, Option<MetadataValue>, &str)> = vec![
        (KEY_HEAD_SIZE, None, "metadata key 'rwkv7.wkv.head_size' is missing"),
        (KEY_HEAD_SIZE, Some(0u32.into()), "= 0: must be greater than zero"),
        (KEY_HEAD_SIZE, Some(12u32.into()), "= 12: the embedding width 32 is not a whole number of heads"),
        (KEY_HEAD_SIZE, Some("64".into()), "should be an unsigned integer but is string \"64\""),
        (KEY_HEAD_SIZE, Some((-16i32).into()), "should be an unsigned integer but is i32 -16"),
        (KEY_EMBEDDING_LENGTH, Some(u64::MAX.into()), "larger than any model dimension"),
        (KEY_LAYER_NORM_EPSILON, None, "'rwkv7.attention.layer_norm_epsilon' is missing"),
        (KEY_LAYER_NORM_EPSILON, Some(1u32.into()), "should be a float"),
        (KEY_LAYER_NORM_EPSILON, Some((-1e-5f32).into()), "must lie between 0 and 1"),
        (KEY_TOKEN_SHIFT_COUNT, Some(3u32.into()), "exactly 2 token shifts"),
    ];
    for (key, value, needle) in cases {
        let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
        match value {
            Some(v) => w.set(key, v),
            None => w.remove(key),
        };
        fails(&w, &[needle]);
    }
    let mut w = build(&hp, GgmlType::F16, GgmlType::F32);
    w.set(KEY_TOKEN_SHIFT_COUNT, 2u32).set(KEY_LAYER_NORM_EPSILON, 1e-6f64);
    assert_eq!(open(&w).unwrap().hparams().ln_eps, 1e-6);
}

#[test]
fn gguf_errors_pass_through_with_the_file_name() {
    let hp = tiny_hparams();
    let mut bytes = build(&hp, GgmlType::F16, GgmlType::F32).to_bytes().unwrap();
    bytes.truncate(bytes.len() - 100);
    let err = GgufFile::from_bytes(LABEL, bytes).map(ModelFile::from_gguf).unwrap_err();
    let err = ModelError::from(err);
    assert!(err.to_string().starts_with("tiny.gguf: tensor 'blk.1.channel_mix_value.weight'"), "{err}");
    let err = ModelFile::open("/nonexistent/model.gguf").unwrap_err();
    assert!(err.to_string().contains("model.gguf: cannot open the file"), "{err}");
}

#[test]
fn roles_cover_the_table() {
    let hp = tiny_hparams();
    let table = expected_tensors(&hp);
    assert_eq!(table.len(), 6 + hp.n_layer * 28);
    assert_eq!(table.iter().filter(|e| e.role == TensorRole::Placeholder).count(), 3);
    assert!(table.iter().any(|e| e.name == blk(1, "time_mix_v1.weight") && e.role == TensorRole::Matrix));
    let mut names: Vec<&str> = table.iter().map(|e| e.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), table.len());
}
