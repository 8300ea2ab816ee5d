//! The extra golden set of quantized models (`RWKV_GOLDEN_QUANT_DIR`, not kept in the repository):
//! every file its manifests list as included is there, opens as a GGUF, and holds exactly the
//! tensors the manifest lists, each of the ggml type listed, with the listed size and file type.
//! Skipped visibly where the folder is not given; failed where `RWKV_REQUIRE` lists `golden-ext`.

use std::collections::BTreeMap;
use std::path::Path;

use gguf_file::GgufFile;

/// The golden model's quantizations (the folder itself) and the 256-wide model's (`w256/`).
const MANIFESTS: [&str; 2] = ["manifest.json", "w256/manifest.json"];

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks the files of one manifest; returns how many it checked.
fn check_manifest(manifest: &Path) -> usize {
    let folder = manifest.parent().unwrap();
    let mut checked = 0;
    for (preset, entry) in json(manifest).as_object().expect("a manifest is an object of presets") {
        if entry["included"].as_bool() != Some(true) {
            continue;
        }
        let file = entry["file"].as_str().unwrap_or_else(|| panic!("{preset}: no file name"));
        let path = folder.join(file);
        let gguf = GgufFile::open(&path).unwrap_or_else(|e| panic!("{preset}: {e}"));
        assert_eq!(Some(gguf.file_len()), entry["bytes"].as_u64(), "{}: size", path.display());
        let file_type = gguf.metadata("general.file_type").and_then(|v| v.as_u64());
        assert_eq!(file_type, entry["general.file_type"].as_u64(), "{}: general.file_type", path.display());
        let want: BTreeMap<&str, &str> = entry["tensor_types"]
            .as_object()
            .unwrap_or_else(|| panic!("{preset}: no tensor_types"))
            .iter()
            .map(|(name, ty)| (name.as_str(), ty.as_str().expect("a type name")))
            .collect();
        let got: BTreeMap<&str, &str> =
            gguf.tensor_infos().iter().map(|t| (t.name.as_str(), t.ggml_type.name())).collect();
        assert_eq!(got, want, "{}: tensor types", path.display());
        checked += 1;
    }
    checked
}

#[test]
fn quantized_golden_files_have_the_manifest_tensor_types() {
    let test = "quantized_golden_files_have_the_manifest_tensor_types";
    let Some(dir) = test_data::require_quant_dir(test) else { return };
    let checked: usize = MANIFESTS.iter().map(|m| check_manifest(&dir.join(m))).sum();
    // Six quantizations of the golden model and two of the w256 model are shipped.
    assert_eq!(checked, 8, "files checked in {}", dir.display());
}
