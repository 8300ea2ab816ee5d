//! A synthetic model at the official 0.1B shape (12 layers, width 768, real LoRA ranks, the World
//! vocabulary), as `rwkv-cli synth` writes it, loads and runs on the GPU and agrees with the CPU
//! reference forward: Q8_0 projections with F16 LoRA matrices, like llama-quantize's files.

mod support;

use std::sync::Arc;

use gpu_core::{ContextOptions, Gpu};
use rwkv_model::gpu::{Logits, Model, ModelOptions, Path, SamplerConfig};
use rwkv_model::reference::{RefModel, RefState};
use rwkv_model::synth::{write_synthetic_model, ModelShape, SynthConfig, SynthType};
use rwkv_model::ModelFile;
use support as golden;

#[test]
fn synthetic_0_1b_q8_0_runs_on_the_gpu_and_matches_the_cpu_reference() {
    let path = std::env::temp_dir().join(format!("rwkv-synth-0.1b-{}.gguf", std::process::id()));
    let config = SynthConfig {
        shape: ModelShape::official("0.1b").unwrap(),
        file_type: SynthType::Q8_0,
        seed: 3,
        threads: None,
    };
    write_synthetic_model(&path, &config, &mut |_| {}).unwrap();
    let file = ModelFile::open(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!((file.hparams().n_layer, file.hparams().n_embd), (12, 768));

    let gpu = Arc::new(Gpu::new(&ContextOptions::default()).unwrap());
    let reference = RefModel::from_file(&file).unwrap();
    let tokens = [510u32, 3, 44000, 11];
    for path_kind in [Path::Fused, Path::Plain] {
        let model = Model::load(
            gpu.clone(),
            &file,
            &ModelOptions { path: Some(path_kind), max_chunk: Some(4), ..ModelOptions::default() },
            &mut |_| {},
        )
        .unwrap();
        let state = model.new_state().unwrap();
        let mut ref_state = RefState::new(&reference);
        let mut want = Vec::new();
        for &t in &tokens {
            want = reference.forward(t, &mut ref_state);
        }
        let got = model.forward(&state, &tokens, &Logits::Last).unwrap().remove(0);
        golden::assert_logits_close(&format!("0.1b q8_0 {path_kind:?} prefill vs cpu"), &got, &want, 2e-3);
        // One GPU-sampled greedy step agrees with the reference's argmax.
        let state = model.new_state().unwrap();
        let mut g = model.generator(&state, &SamplerConfig::GREEDY, 0).unwrap();
        g.prefill(&tokens).unwrap();
        assert_eq!(g.next_token().unwrap() as usize, golden::argmax(&want));
    }
}
