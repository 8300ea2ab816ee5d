//! The golden llama.cpp files (`test_data::golden_dir()`): both load, their hyperparameters equal hparams.json,
//! every tensor has the type the README describes, and the Q8_0 file is exactly ggml's quantization of the
//! F16 file's values.

use ggml_quants::{quantize_to_vec, QuantFormat};
use gguf_file::GgmlType;
use rwkv_model::tensors::expected_tensors;
use rwkv_model::ModelFile;
use test_data::golden;

fn hparams_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(golden("hparams.json")).unwrap()).unwrap()
}

#[test]
fn hyperparameters_equal_hparams_json() {
    let j = hparams_json();
    let get = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("hparams.json lacks {k}")) as usize;
    for file in ["model-f16.gguf", "model-q8_0.gguf"] {
        let model = ModelFile::open(golden(file)).unwrap();
        let hp = model.hparams();
        assert_eq!(hp.n_layer, get("n_layer"), "{file}");
        assert_eq!(hp.n_embd, get("n_embd"));
        assert_eq!(hp.vocab, get("vocab_size"));
        assert_eq!(hp.head_size, get("head_size"));
        assert_eq!(hp.n_head, get("n_head"));
        assert_eq!(hp.ffn, get("dim_ffn"));
        assert_eq!(hp.d_w, get("lora_rank_decay"));
        assert_eq!(hp.d_a, get("lora_rank_iclr"));
        assert_eq!(hp.d_v, get("lora_rank_value_residual_mix"));
        assert_eq!(hp.d_g, get("lora_rank_gate"));
        assert_eq!(hp.ln_eps, j["layer_norm_epsilon"].as_f64().unwrap() as f32);
        assert_eq!(hp.group_norm_eps(), j["group_norm_epsilon"].as_f64().unwrap() as f32);
        // The generator's parameter count equals the elements of all tensors (its layer 0 has v0/v1/v2 of
        // rank D_a too, where the converter writes its placeholders).
        let all: u64 = model.gguf().tensor_infos().iter().map(|t| t.n_elements()).sum();
        assert_eq!(all, j["n_params"].as_u64().unwrap(), "{file}");
    }
}

/// Types per the golden README (layer 0's placeholders are typed like the a0/a1/a2 they copy).
fn expected_type(file: &str, name: &str, ne: &[u64]) -> GgmlType {
    let is_lora =
        ["w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2"].iter().any(|s| name.contains(&format!("time_mix_{s}.")));
    let is_w_lora = name.contains("time_mix_w1.") || name.contains("time_mix_w2.");
    match (file, ne.len()) {
        (_, 1 | 4) => GgmlType::F32,
        ("model-f16.gguf", _) if is_w_lora => GgmlType::F32,
        ("model-f16.gguf", _) => GgmlType::F16,
        (_, _) if is_lora => GgmlType::F32,
        _ => GgmlType::Q8_0,
    }
}

#[test]
fn every_tensor_has_the_documented_type_and_reads_as_finite_f32() {
    for file in ["model-f16.gguf", "model-q8_0.gguf"] {
        let model = ModelFile::open(golden(file)).unwrap();
        let table = expected_tensors(model.hparams());
        assert_eq!(model.gguf().tensor_infos().len(), table.len(), "{file}");
        for e in &table {
            let t = model.tensor(&e.name).unwrap();
            assert_eq!(t.dtype, expected_type(file, &e.name, &e.ne), "{file}: {}", e.name);
            let v = model.tensor_f32(&e.name).unwrap();
            assert_eq!(v.len() as u64, t.n_elements(), "{file}: {}", e.name);
            assert!(v.iter().all(|x| x.is_finite()), "{file}: {}", e.name);
            assert!(v.iter().any(|&x| x != 0.0), "{file}: {} is all zero", e.name);
        }
    }
}

/// The Q8_0 file was quantized by llama-quantize from an F32 conversion whose values equal the F16 file's,
/// so quantizing the F16 values with ggml's rule must give the Q8_0 file's bytes exactly.
#[test]
fn q8_0_file_is_ggml_quantization_of_the_f16_values() {
    let f16 = ModelFile::open(golden("model-f16.gguf")).unwrap();
    let q8 = ModelFile::open(golden("model-q8_0.gguf")).unwrap();
    let mut checked = 0;
    for e in expected_tensors(q8.hparams()) {
        let q = q8.tensor(&e.name).unwrap();
        let values = f16.tensor_f32(&e.name).unwrap();
        match q.dtype {
            GgmlType::Q8_0 => {
                assert!(
                    quantize_to_vec(QuantFormat::Q8_0, &values).unwrap() == q.bytes,
                    "{}: Q8_0 bytes differ from ggml's quantization",
                    e.name
                );
                checked += 1;
            }
            _ => assert_eq!(q8.tensor_f32(&e.name).unwrap(), values, "{}", e.name),
        }
    }
    assert_eq!(checked, 2 + 2 * 6, "token_embd, output and six matrices per layer are Q8_0");
}

#[test]
fn tokenizer_metadata_matches_the_embedding() {
    let model = ModelFile::open(golden("model-f16.gguf")).unwrap();
    let tokens = model.metadata("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
    assert_eq!(tokens.len(), model.hparams().vocab);
    assert_eq!(model.metadata("tokenizer.ggml.model").unwrap().as_str(), Some("rwkv"));
}
