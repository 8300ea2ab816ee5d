//! `rwkv-cli bench` on the golden model (report and JSON) and on a tiny synthetic model.

mod support;

use support::{cli, golden};

#[test]
fn json_report_on_the_golden_model_both_paths() {
    let run = cli(&[
        "bench",
        "--model",
        &golden("model-f16.gguf"),
        "--prompt-tokens",
        "20",
        "--gen-tokens",
        "3",
        "--repeats",
        "2",
        "--both",
        "--both-limits",
        "--json",
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["model"]["layers"], 2);
    assert_eq!(v["model"]["width"], 128);
    assert_eq!(v["prompt_tokens"], 20);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let labels: Vec<(String, String)> =
        runs.iter().map(|r| (r["path"].as_str().unwrap().into(), r["limits"].as_str().unwrap().into())).collect();
    let want = [("fused", "max"), ("plain", "max"), ("fused", "default"), ("plain", "default")];
    assert_eq!(labels, want.map(|(p, l)| (p.to_string(), l.to_string())));
    for r in runs {
        for phase in ["prefill_tok_s", "decode_tok_s"] {
            let s = &r[phase];
            let (lo, med, hi) = (s["min"].as_f64().unwrap(), s["median"].as_f64().unwrap(), s["max"].as_f64().unwrap());
            assert!(lo > 0.0 && lo <= med && med <= hi, "{phase}: {s}");
        }
        let d = &r["decode"];
        assert!(d["dispatches_per_token"].as_f64().unwrap() >= 2.0 * 5.0, "{d}");
        assert!(d["submissions_per_token"].as_f64().unwrap() >= 1.0, "{d}");
        // Weights alone are more than the F16 file's tensor data.
        assert!(r["gpu_memory_bytes"].as_u64().unwrap() > v["model"]["tensor_bytes"].as_u64().unwrap());
        assert_eq!(r["quality_hash"].as_str().unwrap().len(), 16);
        assert_eq!(r["tokens_identical_across_repeats"], true);
        // The automatic chunk holds the whole 20-token prompt.
        assert!(r["max_chunk"].as_u64().unwrap() >= 20, "{r}");
        assert_eq!(r["prefill_chunks"], serde_json::json!([20]));
    }
    // Both paths under both limits policies compute the same math: the same greedy tokens.
    for r in &runs[1..] {
        assert_eq!(runs[0]["quality_hash"], r["quality_hash"]);
    }
    // The plain path records more dispatches per token than the fused one.
    assert!(runs[1]["decode"]["dispatches_per_token"].as_f64() > runs[0]["decode"]["dispatches_per_token"].as_f64());
}

#[test]
fn text_report_on_a_tiny_synthetic_model() {
    let run = cli(&[
        "bench",
        "--synthetic",
        "1x64",
        "--type",
        "f16",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "2",
        "--repeats",
        "1",
        "--chunk",
        "3",
    ])
    .ok();
    for needle in [
        "adapter: ",
        "(synthetic: random weights)",
        "[fused, limits max]",
        "prefill  median",
        "decode   median",
        "quality hash",
        "(chunks [3, 3, 2], at most 3 tokens each)",
    ] {
        assert!(run.stdout.contains(needle), "stdout lacks {needle:?}:\n{}", run.stdout);
    }
}

#[test]
fn bench_errors() {
    cli(&["bench"]).fails(2, &["--model"]);
    cli(&["bench", "--synthetic", "3b"]).fails(1, &["unknown model size"]);
    cli(&["bench", "--model", &golden("model-f16.gguf"), "--repeats", "0"]).fails(1, &["at least 1"]);
    cli(&["bench", "--model", "missing.gguf"]).fails(1, &["not found", "convert_hf_to_gguf.py"]);
}
