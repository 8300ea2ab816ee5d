//! Synthetic models behave like the golden one: finite, unsaturated logits with a standard deviation of
//! about 3 and bounded state over long runs, checked with a CPU forward pass that itself reproduces the
//! official logits of the golden model.

use gguf_file::GgufFile;

use super::tests::TempFile;
use super::*;
use crate::reference::{RefModel, RefState};
use crate::tokenizer::Tokenizer;
use crate::ModelFile;

/// The reference forward pass with its state.
struct CpuModel {
    model: RefModel,
    state: RefState,
}

impl CpuModel {
    fn load(file: GgufFile) -> CpuModel {
        let model = RefModel::from_file(&ModelFile::from_gguf(file).unwrap()).unwrap();
        let state = RefState::new(&model);
        CpuModel { model, state }
    }

    fn step(&mut self, token: u32, logits: bool) -> Option<Vec<f32>> {
        self.model.step(token, &mut self.state, logits)
    }

    /// Frobenius norm of each layer's WKV state.
    fn state_norms(&self) -> Vec<f64> {
        self.state.wkv.iter().map(|s| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt()).collect()
    }
}

fn stats(logits: &[f32]) -> (f64, f64) {
    let n = logits.len() as f64;
    let mean = logits.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let std = (logits.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n).sqrt();
    let max = logits.iter().fold(f32::MIN, |m, &v| m.max(v));
    let z: f64 = logits.iter().map(|&v| f64::from(v - max).exp()).sum();
    (std, 1.0 / z)
}

/// Feeds `tokens`, checking the logits every 100 tokens: finite, standard deviation near the golden 3, top
/// probability below saturation. Returns the WKV state norms after half the tokens and at the end.
fn run_checked(model: &mut CpuModel, tokens: &[u32]) -> (Vec<f64>, Vec<f64>) {
    let mut half = Vec::new();
    for (pos, &token) in tokens.iter().enumerate() {
        if let Some(logits) = model.step(token, pos % 100 == 99) {
            assert!(logits.iter().all(|v| v.is_finite()), "position {pos}: non-finite logits");
            let (std, top) = stats(&logits);
            assert!((1.5..6.0).contains(&std), "position {pos}: logit std {std}");
            assert!(top < 0.95, "position {pos}: top probability {top}");
        }
        if pos + 1 == tokens.len() / 2 {
            half = model.state_norms();
        }
    }
    (half, model.state_norms())
}

/// A deep synthetic model (24 layers) fed 1500 tokens of text behaves like the golden model on the same
/// tokens: healthy logits, and WKV state norms that level off at the golden model's scale.
#[test]
fn deep_synthetic_model_stays_healthy_over_long_runs() {
    let prompt = std::fs::read_to_string(test_data::golden("prompt.txt")).unwrap();
    let tokens: Vec<u32> = Tokenizer::world().encode(&prompt.repeat(10)).into_iter().take(1500).collect();
    assert_eq!(tokens.len(), 1500);
    let mut golden = CpuModel::load(GgufFile::open(test_data::golden("model-f16.gguf")).unwrap());
    let (_, golden_norms) = run_checked(&mut golden, &tokens);
    let golden_max = golden_norms.iter().fold(0f64, |m, &v| m.max(v));

    let shape = ModelShape::with_defaults(24, 128);
    let tmp = TempFile::new("health");
    let config = SynthConfig { shape, file_type: SynthType::F16, seed: 5, threads: None };
    write_synthetic_model(&tmp.0, &config, &mut |_| {}).unwrap();
    let mut model = CpuModel::load(GgufFile::open(&tmp.0).unwrap());
    let (half, end) = run_checked(&mut model, &tokens);
    for (layer, (mid, end)) in half.iter().zip(&end).enumerate() {
        assert!(*end < 1.5 * mid, "layer {layer}: state norm still growing ({mid} -> {end})");
        assert!(*end < 3.0 * golden_max, "layer {layer}: state norm {end}, golden model {golden_max}");
    }
}
