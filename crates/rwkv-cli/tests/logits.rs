//! `rwkv-cli logits` on the golden F16 model against the official fp32 logits.

mod support;

use support::{cli, golden, tmp};

fn read_f32(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

#[test]
fn golden_positions_match_the_official_logits() {
    let out = tmp("golden-logits.f32");
    let run = cli(&[
        "logits",
        "--model",
        &golden("model-f16.gguf"),
        "--tokens-file",
        &golden("tokens.json"),
        "--positions",
        "0,54,108,161",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    let got = read_f32(&out);
    const V: usize = 65536;
    assert_eq!(got.len(), 4 * V);
    for (i, p) in [0, 54, 108, 161].into_iter().enumerate() {
        let want = read_f32(std::path::Path::new(&golden(&format!("logits/official_fp32_pos{p}.f32"))));
        let row = &got[i * V..(i + 1) * V];
        let max_abs = row.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max_abs <= 1e-3, "position {p}: max abs {max_abs}");
        assert_eq!(argmax(row), argmax(&want), "position {p}");
        assert!(run.stdout.contains(&format!("position {p}: argmax {} ", argmax(&want))), "{}", run.stdout);
    }
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn inline_tokens_last_position_and_a_plain_json_array() {
    let (a, b) = (tmp("inline.f32"), tmp("array.f32"));
    let list = tmp("tokens.json");
    std::fs::write(&list, "[33155, 11, 261]").unwrap();
    let model = golden("model-q8_0.gguf");
    cli(&["logits", "--model", &model, "--tokens", "33155,11,261", "--out", a.to_str().unwrap()]).ok();
    cli(&[
        "logits",
        "--model",
        &model,
        "--tokens-file",
        list.to_str().unwrap(),
        "--positions",
        "2",
        "--out",
        b.to_str().unwrap(),
    ])
    .ok();
    let (x, y) = (read_f32(&a), read_f32(&b));
    assert_eq!(x.len(), 65536);
    assert_eq!(x, y, "--positions last is the last token");
    for p in [a, b, list] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn bad_positions_and_tokens_are_refused() {
    let model = golden("model-f16.gguf");
    let out = tmp("never.f32");
    let o = out.to_str().unwrap();
    cli(&["logits", "--model", &model, "--tokens", "1,2", "--positions", "2", "--out", o]).fails(1, &["position 2"]);
    cli(&["logits", "--model", &model, "--tokens", "1,70000", "--out", o]).fails(1, &["70000", "vocabulary"]);
    cli(&["logits", "--model", &model, "--tokens", "1,x", "--out", o]).fails(2, &["invalid value"]);
    let bad = tmp("bad-tokens.json");
    std::fs::write(&bad, r#"{"ids": [1]}"#).unwrap();
    cli(&["logits", "--model", &model, "--tokens-file", bad.to_str().unwrap(), "--out", o]).fails(1, &["token_ids"]);
    std::fs::remove_file(&bad).unwrap();
    assert!(!out.exists());
}
