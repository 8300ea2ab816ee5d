//! The golden reference data (`test_data::golden_dir()`, see its README): models, prompt tokens,
//! official logits and greedy tokens.
#![allow(dead_code)]

use std::path::PathBuf;

pub use test_data::golden_dir as dir;

/// The quantized golden folder (`$RWKV_GOLDEN_QUANT_DIR`, see its README), or `None` after a visible
/// SKIPPED line (a failure instead when `RWKV_REQUIRE` lists `golden-ext`).
pub fn quant_dir(test: &str) -> Option<PathBuf> {
    test_data::require_quant_dir(test)
}

pub fn model(name: &str) -> PathBuf {
    dir().join(name)
}

fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("reading golden {name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

/// The 162 prompt token ids and the positions that have logits files.
pub fn prompt() -> (Vec<u32>, Vec<usize>) {
    let j = json("tokens.json");
    let pos = j["logit_positions"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as usize).collect();
    (ids(&j["token_ids"]), pos)
}

/// The official greedy continuation and each step's top-1/top-2 margin.
pub fn greedy() -> (Vec<u32>, Vec<f32>) {
    let j = json("greedy.json");
    let margins = j["steps"].as_array().unwrap().iter().map(|s| s["margin"].as_f64().unwrap() as f32).collect();
    (ids(&j["token_ids"]), margins)
}

/// A logits file: 65536 little-endian f32.
pub fn logits(name: &str) -> Vec<f32> {
    logits_file(&dir().join("logits").join(name))
}

/// The logits file at `path` (65536 little-endian f32).
pub fn logits_file(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// A JSON file.
pub fn json_file(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Token ids of a JSON array.
pub fn token_ids(v: &serde_json::Value) -> Vec<u32> {
    ids(v)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Index of the largest value; ties go to the lowest index.
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// The golden bar: max |Δ| within `tol` and the same argmax.
pub fn assert_logits_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite logits");
    let d = max_abs_diff(got, want);
    assert!(d <= tol, "{what}: max |Δlogit| = {d:e} > {tol:e}");
    assert_eq!(argmax(got), argmax(want), "{what}: argmax differs (max |Δ| {d:e})");
    eprintln!("{what}: max |Δlogit| = {d:.3e}");
}
