//! `rwkv-cli bench` on the golden model (report and JSON) and on a tiny synthetic model.

mod support;

use support::{cli, golden};

/// `bench --json` on the synthetic 1 x 64 F16 model: 4 prompt tokens, `gen` generated, one
/// repeat, then `extra` flags.
fn tiny_json(gen: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "bench",
        "--synthetic",
        "1x64",
        "--type",
        "f16",
        "--prompt-tokens",
        "4",
        "--gen-tokens",
        gen,
        "--repeats",
        "1",
        "--json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&cli(&args).ok().stdout).unwrap()
}

/// The median of a `{min, median, max}` spread, checked to be positive and ordered.
fn median(s: &serde_json::Value) -> f64 {
    let (lo, med, hi) = (s["min"].as_f64().unwrap(), s["median"].as_f64().unwrap(), s["max"].as_f64().unwrap());
    assert!(lo > 0.0 && lo <= med && med <= hi, "{s}");
    med
}

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
            median(&r[phase]);
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
        "pp64     median",
        "pp128    median",
        "decode CPU per token: record + submit median",
        "quality hash",
        "(chunks [3, 3, 2], at most 3 tokens each)",
        // The projections' bandwidth column.
        " GB/s",
    ] {
        assert!(run.stdout.contains(needle), "stdout lacks {needle:?}:\n{}", run.stdout);
    }
}

/// The decode step's CPU times and the short prompts' prefill speed (issues #21, #22). With one
/// repeat every spread is that repeat's figure, so the times add up against the wall clock: the
/// steps recorded (the tokens plus the lookahead) and the tokens waited for lie inside the
/// timed decode, so record + submit per step plus wait per token is at most its time per token.
#[test]
fn decode_cpu_times_and_short_prefill_in_json() {
    let v = tiny_json("4", &[]);
    let r = &v["runs"][0];
    let short = r["short_prefill"].as_array().unwrap_or_else(|| panic!("no short_prefill: {r}"));
    let lengths: Vec<u64> = short.iter().map(|p| p["tokens"].as_u64().unwrap()).collect();
    assert_eq!(lengths, [64, 128], "{r}");
    for p in short {
        median(&p["tok_s"]);
    }
    let decode_us_per_token = 1e6 / median(&r["decode_tok_s"]);
    let record_submit = median(&r["decode_record_submit_us"]);
    let wait = median(&r["decode_wait_us"]);
    assert!(record_submit < decode_us_per_token, "{r}");
    assert!(
        record_submit + wait <= decode_us_per_token * (1.0 + 1e-9),
        "{record_submit} + {wait} > {decode_us_per_token}"
    );
}

/// `--batch`: one entry per batch size, every sequence's hash equal to its prompt's hash in a
/// batch of one, and speeds consistent with each other.
#[test]
fn batch_sizes_in_json() {
    let v = tiny_json("3", &["--batch", "1,3"]);
    let runs = v["runs"][0]["batch"].as_array().unwrap_or_else(|| panic!("no batch: {v}"));
    let sizes: Vec<u64> = runs.iter().map(|b| b["batch"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [1, 3]);
    for b in runs {
        let n = b["batch"].as_u64().unwrap() as usize;
        assert_eq!(b["hashes"].as_array().unwrap().len(), n, "{b}");
        assert_eq!(b["hashes_match_batch_of_one"], true, "{b}");
        let (aggregate, per) = (b["aggregate_tok_s"].as_f64().unwrap(), b["per_sequence_tok_s"].as_f64().unwrap());
        assert!(aggregate > 0.0 && (aggregate / n as f64 - per).abs() <= 1e-9 * aggregate, "{b}");
        assert!(b["step_ms"].as_f64().unwrap() > 0.0 && b["first_tokens_s"].as_f64().unwrap() > 0.0, "{b}");
    }
    // Sequence 0 continues the same prompt at B = 1 and B = 3.
    assert_eq!(runs[0]["hashes"][0], runs[1]["hashes"][0]);
}

/// The bytes the projections declare they read, summed per kernel group of the decode table,
/// against a count by hand for the synthetic 1 x 64 F16 model (C = 64, F = 256, V = 65536,
/// LoRA ranks 32; every matrix F16 but the decay LoRA's first matrix, F32). One decode token
/// runs, in `matvec_prologue`: r/k/v (three 64 x 64 F16 segments) and LoRA stage 1 (decay,
/// iclr and gate, 32 x 64 each, widened to F32 because their formats differ; the first layer
/// has no value LoRA), each reading the raw residual, the LayerNorm weight and bias, one mix
/// row per segment and the previous shift half; and the FFN key (256 x 64); in `matvec`: the
/// attention output (64 x 64, added into the residual), the FFN value (64 x 256, added) and
/// the head (65536 x 64).
#[test]
fn kernel_bytes_match_a_hand_count() {
    let v = tiny_json("2", &[]);
    let (c, f, v_rows, rank) = (64u64, 256u64, 65536u64, 32u64);
    let tables = &v["runs"][0]["kernel_times"];
    assert!(tables.is_object(), "the adapter has timestamps inside passes (lavapipe does): {}", v["runs"][0]);
    let group_bytes = |table: &serde_json::Value, prologue: bool| -> u64 {
        table
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                let k = r["kernel"].as_str().unwrap();
                k.starts_with("matvec") && k.contains("prologue") == prologue
            })
            .map(|r| r["bytes"].as_u64().unwrap())
            .sum()
    };
    let f16 = 2;
    let f32 = 4;
    // The prologue's vectors: raw x, LayerNorm weight and bias, one mix row per segment, the
    // previous shift half.
    let vectors = |segments: u64| (1 + 2 + segments + 1) * c * f32;
    let rkv = 3 * c * c * f16 + vectors(3);
    let lora1 = 3 * rank * c * f32 + vectors(3);
    let ffn_key = f * c * f16 + vectors(1);
    // Weights, input, residual rows (y += ...) where added.
    let att_out = c * c * f16 + c * f32 + c * f32;
    let ffn_value = c * f * f16 + f * f32 + c * f32;
    let head = v_rows * c * f16 + c * f32;
    let decode = &tables["decode"];
    assert_eq!(group_bytes(decode, true), rkv + lora1 + ffn_key, "{decode}");
    assert_eq!(group_bytes(decode, false), att_out + ffn_value + head, "{decode}");
    for table in [decode, &tables["prefill"]] {
        for row in table.as_array().unwrap() {
            let kernel = row["kernel"].as_str().unwrap();
            let bytes = row["bytes"].as_u64().unwrap();
            let projection = kernel.starts_with("matvec") || kernel.starts_with("matmul");
            assert_eq!(bytes > 0, projection, "{row}");
            match row["gb_per_s"].as_f64() {
                // bytes / (µs · 1e3) = bytes per ns = GB/s.
                Some(g) => {
                    let want = bytes as f64 / (row["total_us"].as_f64().unwrap() * 1e3);
                    assert!((g - want).abs() <= 1e-9 * want, "{row}");
                }
                None => assert!(!projection || row["total_us"].as_f64() == Some(0.0), "{row}"),
            }
        }
    }
}

#[test]
fn bench_errors() {
    cli(&["bench"]).fails(2, &["--model"]);
    cli(&["bench", "--synthetic", "3b"]).fails(1, &["unknown model size"]);
    cli(&["bench", "--model", &golden("model-f16.gguf"), "--repeats", "0"]).fails(1, &["at least 1"]);
    cli(&["bench", "--model", "missing.gguf"]).fails(1, &["not found", "convert_hf_to_gguf.py"]);
}
