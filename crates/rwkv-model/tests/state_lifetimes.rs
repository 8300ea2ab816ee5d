//! Nothing outlives the state and the generator that used it: 1,000 states created, stepped
//! through the GPU generator and dropped in one process leave gpu-core's live buffers (count and
//! bytes) where they started, and every one of them decodes the CPU reference's greedy tokens.
//!
//! Half the states start from a one-token prompt (its prefill is the generator's decode step
//! for state parity 0, the next token's step the one for parity 1), half from a two-token prompt
//! (a prefill chunk recorded with bind groups of its own, then the decode step for parity 0).

mod common;

use std::sync::Arc;

use gguf_file::GgmlType;
use gpu_core::{ContextOptions, Gpu};
use rwkv_model::gpu::{Model, ModelOptions, Path, SamplerConfig};
use rwkv_model::reference::RefModel;
use rwkv_model::ModelFile;

const PROMPTS: [&[u32]; 2] = [&[3], &[3, 11]];
/// Tokens read per state: the prefill's, then one decode step's.
const TOKENS: usize = 2;
const STATES: usize = 1000;

/// Creates a state, prefills `prompt` through a greedy generator, reads `TOKENS` tokens and
/// drops both.
fn one_state(model: &Model, prompt: &[u32], check: impl FnOnce()) -> Vec<u32> {
    let state = model.new_state().unwrap();
    let mut g = model.generator(&state, &SamplerConfig::GREEDY, 0).unwrap();
    g.prefill(prompt).unwrap();
    let tokens = (0..TOKENS).map(|_| g.next_token().unwrap()).collect();
    check();
    tokens
}

#[test]
fn a_thousand_states_stepped_and_dropped_leave_the_live_buffers_where_they_started() {
    let path = std::env::temp_dir().join(format!("rwkv-state-lifetimes-{}.gguf", std::process::id()));
    common::build(&common::gpu_tiny_hparams(), GgmlType::F32, GgmlType::F32).write_file(&path).unwrap();
    let file = ModelFile::open(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let reference = RefModel::from_file(&file).unwrap();
    let want = PROMPTS.map(|p| common::reference_greedy(&reference, p, TOKENS));

    let gpu = Arc::new(Gpu::new(&ContextOptions::default()).expect("a GPU adapter"));
    let options = ModelOptions { path: Some(Path::Fused), max_chunk: Some(4), ..ModelOptions::default() };
    let model = Model::load(gpu.clone(), &file, &options, &mut |_| {}).unwrap();
    // A first state creates what the model keeps for good (its kernels' token-count uniforms).
    for (prompt, want) in PROMPTS.iter().zip(&want) {
        assert_eq!(&one_state(&model, prompt, || {}), want);
    }
    let (base, pipelines) = (gpu.live_buffers(), gpu.pipeline_count());

    // While a state and its generator live, their buffers are counted.
    let state_bytes = model.new_state().unwrap().bytes();
    let tokens = one_state(&model, PROMPTS[0], || {
        let live = gpu.live_buffers();
        assert!(live.buffers >= base.buffers + 3, "{live:?} against {base:?}: the state's three buffers are missing");
        assert!(live.bytes >= base.bytes + state_bytes, "{live:?} against {base:?}");
    });
    assert_eq!(tokens, want[0]);
    for i in 1..STATES {
        assert_eq!(one_state(&model, PROMPTS[i % 2], || {}), want[i % 2], "state {i}");
    }
    gpu.wait().unwrap();
    assert_eq!(gpu.live_buffers(), base, "after {STATES} states");
    assert_eq!(gpu.pipeline_count(), pipelines, "no pipeline is created per state");
}
