//! Composes every kernel module (`common.wgsl` + its files, see `shader_check::modules`),
//! validates it with naga, and writes the composed text to OUT_DIR for the launchers to
//! `include_str!`. A broken shader fails the build with its file, line and naga's message.

#[path = "src/shader_check.rs"]
#[allow(dead_code)]
mod shader_check;

use std::path::Path;

fn main() {
    let src = Path::new("src");
    let out = std::env::var("OUT_DIR").unwrap();
    println!("cargo:rerun-if-changed=src");
    let mut failures = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for module in shader_check::modules(src).expect("listing src/") {
        if !seen.insert(module.name.clone()) {
            failures.push(format!("a shader module named {} exists in two kernel units", module.name));
            continue;
        }
        let paths: Vec<String> = module.files.iter().map(|f| format!("crates/kernels/src/{f}")).collect();
        let texts: Vec<String> = module
            .files
            .iter()
            .map(|f| std::fs::read_to_string(src.join(f)).unwrap_or_else(|e| panic!("src/{f}: {e}")))
            .collect();
        let pieces: Vec<shader_check::Piece<'_>> =
            paths.iter().zip(&texts).map(|(path, text)| shader_check::Piece { path, text }).collect();
        match shader_check::validate(&module.name, &pieces) {
            Ok(v) => std::fs::write(Path::new(&out).join(&module.name), v.composed.text).unwrap(),
            Err(e) => failures.push(e.to_string()),
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
