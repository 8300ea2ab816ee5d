//! `rwkv-cli generate` on the golden models, and every error it explains.

mod support;

use support::{cli, golden, json, tmp};

/// Greedy decoding without penalties reproduces the official greedy continuation's text.
#[test]
fn greedy_generation_reproduces_the_official_continuation() {
    let greedy = json(&golden("greedy.json"));
    let text = greedy["text"].as_str().unwrap();
    let prompt = golden("prompt.txt");
    let args = ["generate", "--model", &golden("model-f16.gguf"), "--prompt-file", &prompt, "--max-tokens", "32"];
    let no_penalty = ["--temperature", "0", "--presence-penalty", "0", "--frequency-penalty", "0"];
    let run = cli(&[&args[..], &no_penalty[..]].concat()).ok();
    assert_eq!(run.stdout, format!("{text}\n"));
    assert!(run.stderr.contains("prefill: 162 tokens") && run.stderr.contains("decode: 32 tokens"), "{}", run.stderr);
    assert!(run.stderr.contains("tok/s"), "{}", run.stderr);

    // A stop string inside that text: output ends right before it, never printed.
    let cut = text.find(" piano").unwrap();
    let run = cli(&[&args[..], &no_penalty[..], &["--stop", " piano", "--no-fused"][..]].concat()).ok();
    assert_eq!(run.stdout, format!("{}\n", &text[..cut]));
    assert!(run.stderr.contains("stopped at stop string"), "{}", run.stderr);
}

#[test]
fn sampling_is_reproducible_with_a_seed() {
    let model = golden("model-q8_0.gguf");
    let args =
        ["generate", "--model", &model, "--prompt", "Hello", "--max-tokens", "6", "--seed", "42", "--top-k", "50"];
    let (a, b) = (cli(&args).ok(), cli(&args).ok());
    assert_eq!(a.stdout, b.stdout);
    assert!(!a.stdout.trim().is_empty());
}

#[test]
fn missing_model_explains_where_models_come_from() {
    cli(&["generate", "--model", "no-such-model.gguf", "--prompt", "hi"])
        .fails(1, &["no-such-model.gguf", "not found", "convert_hf_to_gguf.py", "rwkv-cli synth"]);
}

#[test]
fn bad_model_file_is_named() {
    let bad = tmp("not-a-model.gguf");
    std::fs::write(&bad, "this is not a GGUF file at all").unwrap();
    cli(&["generate", "--model", bad.to_str().unwrap(), "--prompt", "hi"]).fails(1, &[bad.to_str().unwrap()]);
    std::fs::remove_file(&bad).unwrap();
}

#[test]
fn prompt_errors() {
    let model = golden("model-f16.gguf");
    cli(&["generate", "--model", &model, "--prompt", ""]).fails(1, &["prompt is empty"]);
    let empty = tmp("empty-prompt.txt");
    std::fs::write(&empty, "").unwrap();
    cli(&["generate", "--model", &model, "--prompt-file", empty.to_str().unwrap()]).fails(1, &["prompt is empty"]);
    let bad = tmp("bad-utf8.txt");
    std::fs::write(&bad, b"caf\xc3\xa9 \xe2\x82 x").unwrap();
    cli(&["generate", "--model", &model, "--prompt-file", bad.to_str().unwrap()])
        .fails(1, &[bad.to_str().unwrap(), "not valid UTF-8", "byte offset 6"]);
    cli(&["generate", "--model", &model, "--prompt-file", "no-such-prompt.txt"]).fails(1, &["no-such-prompt.txt"]);
    for p in [empty, bad] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn bad_flags() {
    let model = golden("model-f16.gguf");
    cli(&["generate", "--model", &model]).fails(2, &["--prompt"]);
    cli(&["generate", "--model", &model, "--prompt", "x", "--max-tokens", "lots"]).fails(2, &["--max-tokens"]);
    cli(&["generate", "--model", &model, "--prompt", "x", "--no-such-flag"]).fails(2, &["--no-such-flag"]);
    cli(&["generate", "--model", &model, "--prompt", "x", "--fused", "--no-fused"]).fails(2, &["cannot be used with"]);
    cli(&["generate", "--model", &model, "--prompt", "x", "--top-p", "1.5"]).fails(1, &["--top-p"]);
    cli(&["generate", "--model", &model, "--prompt", "x", "--temperature", "-1"]).fails(1, &["--temperature"]);
    cli(&["--limits", "lots", "generate", "--model", &model, "--prompt", "x"]).fails(2, &["--limits"]);
}

/// A model whose embedding table exceeds a storage binding under WebGPU's default limits (128 MiB) is
/// refused before any upload, with the sizes named.
#[test]
fn model_too_large_for_the_adapter_is_refused_with_sizes() {
    let path = tmp("wide-f32.gguf");
    let p = path.to_str().unwrap();
    // 65536 x 576 f32 = 144 MiB.
    cli(&["synth", "--layers", "1", "--width", "576", "--type", "f32", "-o", p]).ok();
    cli(&["--limits", "default", "generate", "--model", p, "--prompt", "hi"]).fails(
        1,
        &[
            "too large for the adapter",
            "token_embd.weight is 144.00 MiB",
            "128.00 MiB per storage binding",
            "--limits max",
        ],
    );
    std::fs::remove_file(&path).unwrap();
}
