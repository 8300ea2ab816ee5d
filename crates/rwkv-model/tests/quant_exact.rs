//! `ggml-quants` against llama.cpp's `llama-quantize`, byte for byte, on the quantized golden files
//! (`$RWKV_GOLDEN_QUANT_DIR`, see its README): every tensor of every included file is re-quantized from
//! the unquantized source with `ggml_quants::quantize` and must equal the file's bytes.
//!
//! - Golden model: the source is `model-f16.gguf` beside the quant folder (or in `RWKV_GOLDEN_DIR`).
//! - w256 model: the source is the F32 file `rwkv-cli synth --layers 2 --width 256 --type f32 --seed 7`
//!   writes; it is regenerated here through the same API into a temporary file.
//!
//! Also checks that the crate's block geometry is `gguf_file`'s type table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ggml_quants::{dequantize_to_vec, quantize_to_vec, QuantFormat};
use gguf_file::{GgmlType, GgufFile};
use rwkv_model::synth::{write_synthetic_model, ModelShape, SynthConfig, SynthType};

mod support;
use support::quant_dir;

/// The golden F16 model (the source llama-quantize quantized).
fn golden_f16_model() -> PathBuf {
    test_data::golden("model-f16.gguf")
}

fn open(path: &Path) -> GgufFile {
    GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"))
}

fn format_of(ty: GgmlType) -> Option<QuantFormat> {
    QuantFormat::from_ggml_type_id(ty.id())
}

/// Bytes and tensors compared, per format.
#[derive(Default)]
struct Tally {
    per_format: BTreeMap<&'static str, (usize, usize)>,
    mismatches: Vec<String>,
}

impl Tally {
    fn report(&self, label: &str, elapsed: f64) {
        let summary: Vec<String> = self
            .per_format
            .iter()
            .map(|(name, (tensors, bytes))| format!("{name}: {tensors} tensors, {bytes} bytes"))
            .collect();
        eprintln!("{label}: {} ({elapsed:.1} s)", summary.join("; "));
    }
}

/// Re-quantizes every tensor of `quantized` whose type is one of ours from the same-named tensor of
/// `source` and compares the bytes.
fn compare_file(quantized: &GgufFile, source: &GgufFile, tally: &mut Tally) {
    for tensor in quantized.tensors() {
        let name = &tensor.info.name;
        let Some(format) = format_of(tensor.info.ggml_type) else {
            tally.mismatches.push(format!(
                "{}: {name}: type {} is not one of ours",
                quantized.path().display(),
                tensor.info.ggml_type
            ));
            continue;
        };
        let src = source.tensor(name).unwrap_or_else(|| panic!("{name} missing from {}", source.path().display()));
        assert_eq!(src.info.dims, tensor.info.dims, "{name}: shapes differ");
        let src_format = format_of(src.info.ggml_type).expect("source tensors are F32 or F16");
        let values = dequantize_to_vec(src_format, src.data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = quantize_to_vec(format, &values).unwrap_or_else(|e| panic!("{name}: {e}"));
        let entry = tally.per_format.entry(format.name()).or_default();
        entry.0 += 1;
        entry.1 += ours.len();
        if ours != tensor.data {
            let block = format.block_bytes();
            let differing = ours.chunks(block).zip(tensor.data.chunks(block)).filter(|(a, b)| a != b).count();
            let first = ours.chunks(block).zip(tensor.data.chunks(block)).position(|(a, b)| a != b).unwrap_or(0);
            tally.mismatches.push(format!(
                "{}: {name} ({format}, {} blocks): {differing} blocks differ, the first is block {first}",
                quantized.path().display(),
                ours.len() / block
            ));
        }
    }
}

/// The golden files made from `model-f16.gguf`, and the types each must contain (so that a file made
/// differently cannot pass by holding only copied tensors).
const GOLDEN_FILES: [(&str, &[&str]); 6] = [
    ("model-q4_1.gguf", &["Q4_1", "Q8_0"]),
    ("model-iq4_nl.gguf", &["IQ4_NL", "Q8_0"]),
    ("model-q4_k_m.gguf", &["Q5_0", "Q4_K", "Q8_0"]),
    ("model-q5_k_m.gguf", &["Q5_1", "Q5_K", "Q8_0"]),
    ("model-q3_k_m.gguf", &["Q4_0", "Q3_K", "Q8_0"]),
    ("model-q2_k.gguf", &["Q4_0", "Q2_K", "Q8_0"]),
];

#[test]
fn golden_files_match_llama_quantize_byte_for_byte() {
    let Some(dir) = quant_dir("golden_files_match_llama_quantize_byte_for_byte") else { return };
    let source = open(&golden_f16_model());
    let mut tally = Tally::default();
    let start = Instant::now();
    for (file, required) in GOLDEN_FILES {
        let quantized = open(&dir.join(file));
        let before: usize = tally.per_format.values().map(|v| v.0).sum();
        compare_file(&quantized, &source, &mut tally);
        let compared: usize = tally.per_format.values().map(|v| v.0).sum::<usize>() - before;
        assert_eq!(compared, source.tensor_infos().len(), "{file}: every tensor of the source is compared");
        for ty in required {
            assert!(quantized.tensors().any(|t| t.info.ggml_type.name() == *ty), "{file} has no {ty} tensor");
        }
    }
    tally.report("golden files", start.elapsed().as_secs_f64());
    assert!(tally.mismatches.is_empty(), "bytes differ from llama-quantize:\n{}", tally.mismatches.join("\n"));
}

/// Removes the temporary F32 model however the test ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The README's identity of the w256 source: size and sha256.
const W256_F32_BYTES: u64 = 142_578_080;
const W256_F32_SHA256: &str = "196607537873593de14571780f866cd896962db5648f69e47dca576bb9189e0a";

/// The sha256 of `path` from the system's `sha256sum`, if there is one.
fn sha256sum(path: &Path) -> Option<String> {
    let out = std::process::Command::new("sha256sum").arg(path).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.split_whitespace().next().unwrap_or_default().to_owned())
}

#[test]
fn w256_files_match_llama_quantize_byte_for_byte() {
    let Some(dir) = quant_dir("w256_files_match_llama_quantize_byte_for_byte") else { return };
    let start = Instant::now();
    let temp = TempFile(std::env::temp_dir().join(format!("rwkv-quant-exact-w256-f32-{}.gguf", std::process::id())));
    let config =
        SynthConfig { shape: ModelShape::with_defaults(2, 256), file_type: SynthType::F32, seed: 7, threads: None };
    let summary = write_synthetic_model(&temp.0, &config, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.file_bytes, W256_F32_BYTES, "the synthetic w256 F32 file is not the README's source");
    match sha256sum(&temp.0) {
        Some(sum) => assert_eq!(sum, W256_F32_SHA256, "the synthetic w256 F32 file is not the README's source"),
        None => eprintln!("SKIPPED part: no sha256sum program; the source is checked by its size only"),
    }
    eprintln!("w256 source regenerated and checked in {:.1} s", start.elapsed().as_secs_f64());

    let source = open(&temp.0);
    let mut tally = Tally::default();
    for (file, required) in [("model-q4_k_m.gguf", ["Q4_K", "Q6_K"]), ("model-iq4_xs.gguf", ["IQ4_XS", "Q6_K"])] {
        let quantized = open(&dir.join("w256").join(file));
        compare_file(&quantized, &source, &mut tally);
        for ty in required {
            assert!(quantized.tensors().any(|t| t.info.ggml_type.name() == ty), "w256/{file} has no {ty} tensor");
        }
    }
    tally.report("w256 files", start.elapsed().as_secs_f64());
    assert!(tally.mismatches.is_empty(), "bytes differ from llama-quantize:\n{}", tally.mismatches.join("\n"));
}

#[test]
fn block_geometry_is_the_gguf_type_table() {
    for format in QuantFormat::ALL {
        let ty = GgmlType::from_id(format.ggml_type_id()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(ty.name(), format.name(), "type id {}", format.ggml_type_id());
        assert_eq!(ty.block_size(), format.block_elements() as u64, "{format} elements per block");
        assert_eq!(ty.block_bytes(), format.block_bytes() as u64, "{format} bytes per block");
    }
    // And the other way: every GGUF type with one of our names is ours, with our id.
    for ty in GgmlType::all() {
        if let Some(format) = QuantFormat::from_name(ty.name()) {
            assert_eq!(format.ggml_type_id(), ty.id(), "{ty}");
        }
    }
}
