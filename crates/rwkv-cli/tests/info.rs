//! `rwkv-cli info` on the golden model, and on broken files: a clear error naming the file, exit code 1,
//! never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gguf_file::{GgmlType, GgufWriter};
use test_data::golden;

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("info-{}-{name}", std::process::id()))
}

fn info(path: &Path) -> (Output, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rwkv-cli")).arg("info").arg(path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn assert_contains(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "output lacks {n:?}:\n{text}");
    }
}

#[test]
fn golden_f16_model() {
    let (out, stdout, stderr) = info(&golden("model-f16.gguf"));
    assert!(out.status.success(), "exit {:?}, stderr: {stderr}", out.status);
    assert_contains(
        &stdout,
        &[
            "GGUF v3",
            "general.architecture",
            "string \"rwkv7\"",
            "rwkv7.wkv.head_size",
            "array[string; 65536] [\"<s>\", ",
            "array[i32; 65536] [3, 1, 1",
            "hyperparameters (RWKV-7):",
            "2 x 64",
            "32 / 32 / 32 / 32",
            "token_embd.weight",
            "[128, 65536]",
            "blk.1.time_mix_lerp_fused.weight",
            "[128, 1, 1, 6]",
            "total: 62 tensors, 17241344 elements",
        ],
    );
    let embd = stdout.lines().find(|l| l.trim_start().starts_with("token_embd.weight ")).unwrap();
    assert!(embd.contains("F16") && embd.ends_with(&(128 * 65536 * 2).to_string()), "{embd}");
    // The metadata block is not flooded by the 65536 tokens.
    assert!(stdout.lines().count() < 120, "{} lines", stdout.lines().count());
}

#[test]
fn truncated_copy_fails_cleanly() {
    let original = std::fs::read(golden("model-f16.gguf")).unwrap();
    for (name, len) in [("cut-data.gguf", original.len() - 1000), ("cut-header.gguf", 1_000_000), ("empty.gguf", 0)] {
        let path = tmp(name);
        std::fs::write(&path, &original[..len]).unwrap();
        let (out, stdout, stderr) = info(&path);
        assert_eq!(out.status.code(), Some(1), "{name}: stdout {stdout}\nstderr {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "the error must name the file: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        match name {
            "cut-data.gguf" => assert_contains(&stderr, &["tensor '", "extends past the end of the file"]),
            "cut-header.gguf" => assert_contains(&stderr, &["truncated", "'tokenizer.ggml.tokens'"]),
            _ => assert_contains(&stderr, &["the file is empty"]),
        }
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_gguf_that_is_not_rwkv7_is_listed_then_refused() {
    let path = tmp("llama.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", "llama").add_tensor("token_embd.weight", GgmlType::F32, &[4, 2], vec![0u8; 32]);
    w.write_file(&path).unwrap();
    let (out, stdout, stderr) = info(&path);
    assert_eq!(out.status.code(), Some(1));
    assert_contains(&stdout, &["string \"llama\"", "token_embd.weight", "[4, 2]"]);
    assert!(!stdout.contains("hyperparameters"));
    assert_contains(&stderr, &["not a valid RWKV-7 model", "architecture 'llama' is not RWKV-7"]);
    std::fs::remove_file(&path).unwrap();
}

/// The `by type:` table row of `ty`: (tensors, bytes, runs here).
fn type_row(stdout: &str, ty: &str) -> (u64, u64, String) {
    let table = stdout.split("\nby type:\n").nth(1).unwrap_or_else(|| panic!("no by-type table:\n{stdout}"));
    let row = table.lines().find(|l| l.split_whitespace().next() == Some(ty)).unwrap_or_else(|| panic!("no {ty} row"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    (cols[1].parse().unwrap(), cols[2].parse().unwrap(), cols.last().unwrap().to_string())
}

#[test]
fn a_mixed_file_gets_a_table_of_types_including_ones_the_engine_cannot_run() {
    let path = tmp("mixed.gguf");
    let mut w = GgufWriter::new();
    // (name, type, dims, bytes): block geometry from ggml (Q4_K: 144 bytes per 256 values, IQ2_XXS: 66,
    // Q8_0: 34 per 32, TQ1_0: 54 per 256).
    let tensors: [(&str, GgmlType, &[u64], usize); 7] = [
        ("a", GgmlType::F32, &[4, 2], 32),
        ("b", GgmlType::F32, &[3], 12),
        ("c", GgmlType::F16, &[8], 16),
        ("d", GgmlType::Q8_0, &[32, 2], 68),
        ("e", GgmlType::Q4_K, &[256, 3], 432),
        ("f", GgmlType::IQ2_XXS, &[512], 132),
        ("g", GgmlType::TQ1_0, &[256], 54),
    ];
    w.set("general.architecture", "test");
    for (name, ty, dims, bytes) in tensors {
        w.add_tensor(name, ty, dims, vec![0u8; bytes]);
    }
    w.write_file(&path).unwrap();
    let (out, stdout, stderr) = info(&path);
    assert_eq!(out.status.code(), Some(1), "not an RWKV-7 model: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(type_row(&stdout, "F32"), (2, 44, "yes".into()));
    assert_eq!(type_row(&stdout, "F16"), (1, 16, "yes".into()));
    assert_eq!(type_row(&stdout, "Q8_0"), (1, 68, "yes".into()));
    assert_eq!(type_row(&stdout, "Q4_K"), (1, 432, "yes".into()));
    assert_eq!(type_row(&stdout, "IQ2_XXS"), (1, 132, "no".into()));
    assert_eq!(type_row(&stdout, "TQ1_0"), (1, 54, "no".into()));
    let table = stdout.split("\nby type:\n").nth(1).unwrap();
    assert_eq!(table.lines().count(), 1 + 6, "a header and one row per type:\n{table}");
    std::fs::remove_file(&path).unwrap();
}
