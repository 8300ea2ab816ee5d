//! `synth --type q4_k_m` and `--type iq4_xs` against llama.cpp's `llama-quantize`: the w256 golden files
//! (`$RWKV_GOLDEN_QUANT_DIR/w256/`, see its README) were made by llama-quantize from the seed-7 F32 synthetic
//! model, so the synthetic generator writing those types directly must give the same tensors with the same
//! shapes, types and bytes, and the same `general.file_type`. (Not compared: the order of the tensors,
//! which llama-quantize sorts, and the other metadata keys.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gguf_file::{GgufFile, MetadataValue};
use rwkv_model::synth::{write_synthetic_model, ModelShape, SynthConfig, SynthType};

mod support;
use support::quant_dir;

/// Removes the temporary file however the test ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn open(path: &Path) -> GgufFile {
    GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Synthesizes the w256 model (`--layers 2 --width 256 --seed 7`) as `file_type` and compares it with the
/// golden file `golden_name`, which must hold each of `required` types.
fn synth_matches_golden(test: &str, file_type: SynthType, golden_name: &str, required: &[&str]) {
    let Some(dir) = quant_dir(test) else { return };
    let golden = open(&dir.join("w256").join(golden_name));
    let start = Instant::now();
    let temp = TempFile(std::env::temp_dir().join(format!("rwkv-synth-exact-{file_type}-{}.gguf", std::process::id())));
    let config = SynthConfig { shape: ModelShape::with_defaults(2, 256), file_type, seed: 7, threads: None };
    write_synthetic_model(&temp.0, &config, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{test}: synthesized {file_type} in {:.1} s", start.elapsed().as_secs_f64());
    let ours = open(&temp.0);

    for ty in required {
        assert!(golden.tensors().any(|t| t.info.ggml_type.name() == *ty), "{golden_name} has no {ty} tensor");
    }
    let file_type_of = |f: &GgufFile| f.metadata("general.file_type").and_then(MetadataValue::as_u64);
    assert_eq!(file_type_of(&ours), file_type_of(&golden), "general.file_type");
    assert!(file_type_of(&golden).is_some());

    // llama-quantize writes the tensors in its own order (by layer, then name); ours is the converter's.
    let infos = |f: &GgufFile| -> BTreeMap<String, (Vec<u64>, String)> {
        f.tensor_infos().iter().map(|t| (t.name.clone(), (t.dims.clone(), t.ggml_type.name().to_owned()))).collect()
    };
    assert_eq!(infos(&ours), infos(&golden), "tensor names, shapes and types");
    let mut differing = Vec::new();
    for t in golden.tensors() {
        let mine = ours.tensor(&t.info.name).unwrap_or_else(|| panic!("{} missing", t.info.name));
        if mine.data != t.data {
            differing.push(format!("{} ({})", t.info.name, t.info.ggml_type));
        }
    }
    assert!(differing.is_empty(), "bytes differ from llama-quantize in: {}", differing.join(", "));
    eprintln!(
        "{test}: {} tensors identical to {golden_name} ({:.1} s)",
        golden.tensor_infos().len(),
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn synth_q4_k_m_is_llama_quantize_q4_k_m() {
    synth_matches_golden(
        "synth_q4_k_m_is_llama_quantize_q4_k_m",
        SynthType::Q4_K_M,
        "model-q4_k_m.gguf",
        &["Q4_K", "Q6_K"],
    );
}

#[test]
fn synth_iq4_xs_is_llama_quantize_iq4_xs() {
    synth_matches_golden(
        "synth_iq4_xs_is_llama_quantize_iq4_xs",
        SynthType::IQ4_XS,
        "model-iq4_xs.gguf",
        &["IQ4_XS", "Q6_K"],
    );
}
