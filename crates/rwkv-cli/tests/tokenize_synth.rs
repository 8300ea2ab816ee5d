//! Drives the `rwkv-cli` binary: `tokenize` against the official golden token ids, and `synth` of a tiny
//! model whose file is then read back (and tokenized with).

use std::path::PathBuf;
use std::process::{Command, Output};

use gguf_file::{GgmlType, GgufFile, MetadataValue};

use test_data::golden;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rwkv-cli")).args(args).output().expect("running rwkv-cli")
}

fn ok_stdout(args: &[&str]) -> String {
    let out = cli(args);
    assert!(out.status.success(), "rwkv-cli {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ids(json: &str) -> Vec<u64> {
    serde_json::from_str::<Vec<u64>>(json.trim()).unwrap()
}

#[test]
fn tokenize_prints_the_official_ids() {
    let prompt = std::fs::read_to_string(golden("prompt.txt")).unwrap();
    let tokens: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden("tokens.json")).unwrap()).unwrap();
    let want: Vec<u64> = tokens["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(ids(&ok_stdout(&["tokenize", &prompt])), want);
    let model = golden("model-q8_0.gguf").to_string_lossy().into_owned();
    assert_eq!(ids(&ok_stdout(&["tokenize", "--model", &model, &prompt])), want);
    assert_eq!(ids(&ok_stdout(&["tokenize", ""])), Vec::<u64>::new());
    let missing = cli(&["tokenize", "--model", "no-such-file.gguf", "x"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-file.gguf"));
}

#[test]
fn synth_writes_a_tiny_model_that_reads_back() {
    let path: PathBuf = std::env::temp_dir().join(format!("rwkv-cli-synth-{}.gguf", std::process::id()));
    let p = path.to_str().unwrap();
    let args =
        ["synth", "--layers", "2", "--width", "64", "--ranks", "32,16,8,24", "--type", "q8_0", "--seed", "9", "-o", p];
    ok_stdout(&args);
    let file = GgufFile::open(&path).unwrap();
    let key = |k: &str| file.metadata(k).and_then(MetadataValue::as_u64).unwrap();
    assert_eq!(key("rwkv7.block_count"), 2);
    assert_eq!(key("rwkv7.embedding_length"), 64);
    assert_eq!(key("rwkv7.feed_forward_length"), 256);
    assert_eq!(key("rwkv7.attention.iclr_lora_rank"), 16);
    assert_eq!(key("rwkv7.attention.gate_lora_rank"), 24);
    assert_eq!(file.tensor("blk.1.time_mix_key.weight").unwrap().info.ggml_type, GgmlType::Q8_0);
    // llama-quantize leaves LoRA matrices in the source's type: F32 (the quantized types come from f32).
    assert_eq!(file.tensor("blk.1.time_mix_g1.weight").unwrap().info.ggml_type, GgmlType::F32);
    assert_eq!(ids(&ok_stdout(&["tokenize", "--model", p, "Hello"])), [33155]);
    let info = ok_stdout(&["info", p]);
    assert!(info.contains("blk.1.time_mix_key.weight"), "info lists the tensors:\n{info}");

    let bad = cli(&["synth", "--size", "3b", "-o", p]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown model size"));
    std::fs::remove_file(&path).unwrap();
}
