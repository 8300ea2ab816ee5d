//! The CPU reference forward pass against the official implementation's logits.

mod support;
use support as golden;

use rwkv_model::reference::{RefModel, RefState};
use rwkv_model::ModelFile;

fn run(model_file: &str, reference_prefix: &str, tol: f32, check_greedy: bool) {
    let file = ModelFile::open(golden::model(model_file)).unwrap();
    let model = RefModel::from_file(&file).unwrap();
    let (tokens, positions) = golden::prompt();
    let mut state = RefState::new(&model);
    let mut last = Vec::new();
    for (p, &t) in tokens.iter().enumerate() {
        let want = positions.contains(&p) || p + 1 == tokens.len();
        if let Some(logits) = model.step(t, &mut state, want) {
            if positions.contains(&p) {
                let reference = golden::logits(&format!("{reference_prefix}_pos{p}.f32"));
                golden::assert_logits_close(&format!("{model_file} pos {p}"), &logits, &reference, tol);
            }
            last = logits;
        }
    }
    if check_greedy {
        let (expected, _) = golden::greedy();
        let mut got = Vec::new();
        let mut logits = last;
        for _ in 0..expected.len() {
            let t = golden::argmax(&logits) as u32;
            got.push(t);
            logits = model.forward(t, &mut state);
        }
        assert_eq!(got, expected, "greedy continuation");
        let after = golden::logits("official_fp32_after_greedy.f32");
        golden::assert_logits_close("after greedy", &logits, &after, tol);
    }
}

#[test]
fn f16_model_matches_official_fp32() {
    run("model-f16.gguf", "official_fp32", 1e-4, true);
}

#[test]
fn q8_0_model_matches_float64_dequantized_reference() {
    run("model-q8_0.gguf", "numpy_f64_q8_0dequant", 1e-4, false);
}
