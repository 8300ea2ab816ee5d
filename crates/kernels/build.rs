//! Composes every kernel's WGSL with `src/common.wgsl`, validates it with naga, and writes the
//! composed text to OUT_DIR for the launchers to `include_str!`. A broken shader fails the
//! build with its file, line and naga's message.

#[path = "src/shader_check.rs"]
#[allow(dead_code)]
mod shader_check;

use std::path::Path;

fn main() {
    let src = Path::new("src");
    let out = std::env::var("OUT_DIR").unwrap();
    println!("cargo:rerun-if-changed=src");
    let common_path = "crates/kernels/src/common.wgsl";
    let common = std::fs::read_to_string(src.join("common.wgsl")).expect("src/common.wgsl");
    let mut failures = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut dirs: Vec<_> = std::fs::read_dir(src).unwrap().flatten().filter(|e| e.path().is_dir()).collect();
    dirs.sort_by_key(|e| e.path());
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_str().unwrap().to_string();
            if !seen.insert(name.clone()) {
                failures.push(format!("{}: a shader named {name} exists in another kernel unit", file.display()));
                continue;
            }
            let rel = format!("crates/kernels/{}", file.display());
            let text = std::fs::read_to_string(&file).unwrap();
            match shader_check::validate(common_path, &common, &rel, &text) {
                Ok(v) => std::fs::write(Path::new(&out).join(&name), v.composed.text).unwrap(),
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("error: {f}");
            println!("cargo:warning={f}");
        }
        eprintln!("error: {} WGSL shader(s) failed naga validation", failures.len());
        std::process::exit(1);
    }
}
