//! The GPU forward pass against itself and the CPU reference: an all-F32 copy of the golden F16
//! model written with our own GGUF writer, the CPU reference forward, token by token against one
//! prefill, and state clone / save / load.

mod support;

use std::sync::Arc;

use ggml_quants::{dequantize_to_vec, QuantFormat};
use gguf_file::{f32_bytes, GgmlType, GgufFile, GgufWriter};
use gpu_core::{ContextOptions, Gpu};
use rwkv_model::gpu::{Logits, Model, ModelOptions, Path};
use rwkv_model::reference::{RefModel, RefState};
use rwkv_model::ModelFile;
use support as golden;

fn gpu() -> Arc<Gpu> {
    Arc::new(Gpu::new(&ContextOptions::default()).expect("a GPU adapter"))
}

fn load(file: &ModelFile, path: Path) -> Model {
    Model::load(
        gpu(),
        file,
        &ModelOptions { path: Some(path), max_chunk: Some(64), ..ModelOptions::default() },
        &mut |_| {},
    )
    .unwrap()
}

/// A temporary file removed on drop.
struct Temp(std::path::PathBuf);
impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn all_f32_copy_written_by_our_writer_matches_official() {
    let src = GgufFile::open(golden::model("model-f16.gguf")).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata_entries() {
        if k != "general.file_type" {
            w.set(k, v.clone());
        }
    }
    w.set("general.file_type", 0u32);
    for t in src.tensors() {
        let format = QuantFormat::from_ggml_type_id(t.info.ggml_type.id()).expect("F32/F16 tensors");
        let values = dequantize_to_vec(format, t.data).unwrap();
        w.add_tensor(t.info.name.clone(), GgmlType::F32, &t.info.dims, f32_bytes(&values));
    }
    let tmp = Temp(std::env::temp_dir().join(format!("rwkv-f32-copy-{}.gguf", std::process::id())));
    w.write_file(&tmp.0).unwrap();
    let file = ModelFile::open(&tmp.0).unwrap();
    assert!(file.gguf().tensor_infos().iter().all(|t| t.ggml_type == GgmlType::F32));
    let model = load(&file, Path::Fused);
    let (tokens, positions) = golden::prompt();
    let got = model.forward(&model.new_state().unwrap(), &tokens, &Logits::At(positions.clone())).unwrap();
    for (logits, p) in got.iter().zip(&positions) {
        let want = golden::logits(&format!("official_fp32_pos{p}.f32"));
        golden::assert_logits_close(&format!("f32 copy pos {p}"), logits, &want, 1e-3);
    }
}

#[test]
fn gpu_matches_cpu_reference_forward() {
    for name in ["model-f16.gguf", "model-q8_0.gguf"] {
        let file = ModelFile::open(golden::model(name)).unwrap();
        let reference = RefModel::from_file(&file).unwrap();
        let model = load(&file, Path::Fused);
        let (tokens, _) = golden::prompt();
        let tokens = &tokens[..40];
        let mut ref_state = RefState::new(&reference);
        let state = model.new_state().unwrap();
        for (i, &t) in tokens.iter().enumerate() {
            let want = reference.forward(t, &mut ref_state);
            let got = model.forward(&state, &[t], &Logits::Last).unwrap().remove(0);
            if i % 13 == 0 || i + 1 == tokens.len() {
                golden::assert_logits_close(&format!("{name} gpu vs cpu, token {i}"), &got, &want, 1e-3);
            }
        }
        // The recurrent states agree too.
        let snap = state.read(model.gpu()).unwrap();
        let flat = |v: &Vec<Vec<f32>>| v.concat();
        assert!(golden::max_abs_diff(&snap.shift_att, &flat(&ref_state.shift_att)) < 1e-4);
        assert!(golden::max_abs_diff(&snap.shift_ffn, &flat(&ref_state.shift_ffn)) < 1e-4);
        assert!(golden::max_abs_diff(&snap.wkv, &flat(&ref_state.wkv)) < 1e-3);
    }
}

#[test]
fn token_by_token_equals_one_prefill_and_fused_equals_plain() {
    let file = ModelFile::open(golden::model("model-f16.gguf")).unwrap();
    let (fused, plain) = (load(&file, Path::Fused), load(&file, Path::Plain));
    let (tokens, _) = golden::prompt();
    let tokens = &tokens[..100];
    let prefill = fused.forward(&fused.new_state().unwrap(), tokens, &Logits::Last).unwrap().remove(0);
    for model in [&fused, &plain] {
        let state = model.new_state().unwrap();
        let mut last = Vec::new();
        for &t in tokens {
            last = model.forward(&state, &[t], &Logits::Last).unwrap().remove(0);
        }
        golden::assert_logits_close(
            &format!("{:?} token by token vs fused prefill", model.path()),
            &last,
            &prefill,
            1e-4,
        );
    }
    let plain_prefill = plain.forward(&plain.new_state().unwrap(), tokens, &Logits::Last).unwrap().remove(0);
    golden::assert_logits_close("plain prefill vs fused prefill", &plain_prefill, &prefill, 1e-4);
}

#[test]
fn state_clone_save_and_load_resume_a_sequence() {
    let file = ModelFile::open(golden::model("model-f16.gguf")).unwrap();
    let model = load(&file, Path::Fused);
    let gpu = model.gpu().clone();
    let (tokens, _) = golden::prompt();
    let (a, b) = tokens[..60].split_at(30);
    let whole = model.forward(&model.new_state().unwrap(), &tokens[..60], &Logits::Last).unwrap().remove(0);

    let state = model.new_state().unwrap();
    model.forward(&state, a, &Logits::Last).unwrap();
    let clone = state.try_clone(&gpu).unwrap();
    let tmp = Temp(std::env::temp_dir().join(format!("rwkv-state-{}.bin", std::process::id())));
    state.save(&gpu, &tmp.0).unwrap();
    // Diverge the original, then bring it back from the file.
    model.forward(&state, &tokens[100..110], &Logits::Last).unwrap();
    state.load(&gpu, &tmp.0).unwrap();
    let resumed = model.forward(&state, b, &Logits::Last).unwrap().remove(0);
    let from_clone = model.forward(&clone, b, &Logits::Last).unwrap().remove(0);
    assert_eq!(resumed, from_clone);
    golden::assert_logits_close("resumed vs whole", &resumed, &whole, 1e-4);

    // Reset means the zero state again.
    state.reset(&gpu);
    let fresh = model.forward(&state, &tokens[..60], &Logits::Last).unwrap().remove(0);
    assert_eq!(fresh, whole);

    // A state file for another shape, or not a state file, is refused with a reason.
    std::fs::write(&tmp.0, b"not a state").unwrap();
    let e = state.load(&gpu, &tmp.0).unwrap_err().to_string();
    assert!(e.contains("state file"), "{e}");
}

#[test]
fn bad_inputs_are_errors() {
    let file = ModelFile::open(golden::model("model-f16.gguf")).unwrap();
    let model = load(&file, Path::Fused);
    let state = model.new_state().unwrap();
    assert!(model.forward(&state, &[], &Logits::Last).is_err());
    let e = model.forward(&state, &[70000], &Logits::Last).unwrap_err().to_string();
    assert!(e.contains("70000") && e.contains("65536"), "{e}");
    let e = model.forward(&state, &[1, 2], &Logits::At(vec![5])).unwrap_err().to_string();
    assert!(e.contains("position 5"), "{e}");
}
