//! `cargo xtask validate-shaders`: validates every shader module of crates/kernels with naga,
//! composed from its files as the build does, lists every registered kernel, and checks that each launcher's declared
//! bindings (group, binding, access) agree with what the shader's entry point actually uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gpu_core::{Access, KernelSource};
use kernels::shader_check;

fn kernels_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/kernels/src")
}

/// Validates every shader module as the build composes it; returns the module names that passed.
fn validate_files(verbose: bool) -> Result<Vec<String>> {
    let dir = kernels_dir();
    let mut errors = Vec::new();
    let mut ok = Vec::new();
    for module in shader_check::modules(&dir).context("listing crates/kernels/src")? {
        let paths: Vec<String> = module.files.iter().map(|f| format!("crates/kernels/src/{f}")).collect();
        let texts = module
            .files
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).with_context(|| format!("reading {f}")))
            .collect::<Result<Vec<String>>>()?;
        let pieces: Vec<shader_check::Piece<'_>> =
            paths.iter().zip(&texts).map(|(path, text)| shader_check::Piece { path, text }).collect();
        match shader_check::validate(&module.name, &pieces) {
            Ok(_) => {
                if verbose {
                    println!("valid   {:<24} {}", module.name, module.files.join(" + "));
                }
                ok.push(module.name);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        bail!("{} shader module(s) failed validation", errors.len());
    }
    Ok(ok)
}

/// The bindings an entry point really uses, as `(group, binding) -> (name, access)`.
fn used_bindings(k: &KernelSource) -> Result<BTreeMap<(u32, u32), (String, Access)>> {
    let module = naga::front::wgsl::parse_str(k.wgsl).map_err(|e| anyhow::anyhow!("{}: {}", k.name, e.message()))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| anyhow::anyhow!("{}: {e}", k.name))?;
    let ep = module
        .entry_points
        .iter()
        .position(|e| e.name == k.entry)
        .with_context(|| format!("kernel {}: entry point '{}' not found in its shader", k.name, k.entry))?;
    let fi = info.get_entry_point(ep);
    let mut used = BTreeMap::new();
    for (h, var) in module.global_variables.iter() {
        let Some(b) = &var.binding else { continue };
        if fi[h].is_empty() {
            continue;
        }
        let access = match var.space {
            naga::AddressSpace::Uniform => Access::Uniform,
            naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => Access::ReadWrite,
            naga::AddressSpace::Storage { .. } => Access::Read,
            other => bail!("kernel {}: binding of unsupported space {other:?}", k.name),
        };
        used.insert((b.group, b.binding), (var.name.clone().unwrap_or_default(), access));
    }
    Ok(used)
}

/// Compares a launcher's declared bindings with the shader's; returns the mismatches.
pub fn check_bindings(k: &KernelSource) -> Result<Vec<String>> {
    let used = used_bindings(k)?;
    let mut problems = Vec::new();
    for d in k.bindings {
        match used.get(&(d.group, d.binding)) {
            None => problems.push(format!(
                "{}: declares @group({}) @binding({}) '{}' which entry '{}' does not use",
                k.name, d.group, d.binding, d.name, k.entry
            )),
            Some((name, access)) => {
                if *access != d.access {
                    problems.push(format!(
                        "{}: @group({}) @binding({}) '{}' declared {:?} but the shader has {:?}",
                        k.name, d.group, d.binding, name, d.access, access
                    ));
                }
                if name != d.name {
                    problems.push(format!(
                        "{}: @group({}) @binding({}) is '{}' in the shader but '{}' in the launcher",
                        k.name, d.group, d.binding, name, d.name
                    ));
                }
            }
        }
    }
    for ((g, b), (name, _)) in &used {
        if !k.bindings.iter().any(|d| d.group == *g && d.binding == *b) {
            problems.push(format!(
                "{}: uses @group({g}) @binding({b}) '{name}' which the launcher does not declare",
                k.name
            ));
        }
    }
    let groups: Vec<u32> = (0..k.group_count()).collect();
    for g in groups {
        if !k.bindings.iter().any(|d| d.group == g) {
            problems.push(format!("{}: bind group {g} is empty (groups must be numbered without gaps)", k.name));
        }
    }
    let f16 = k.wgsl.lines().any(|l| l.trim_start().starts_with("enable f16"));
    if f16 != k.needs.shader_f16 {
        problems.push(format!(
            "{}: needs.shader_f16 is {} but the shader {} `enable f16`",
            k.name,
            k.needs.shader_f16,
            if f16 { "has" } else { "lacks" }
        ));
    }
    // Subgroup builtins in code (comments stripped): `subgroupAdd`, `subgroupShuffleXor`, ...
    let subgroups = k.wgsl.lines().map(|l| l.split("//").next().unwrap_or("")).any(|l| l.contains("subgroup"));
    if subgroups != k.needs.subgroups {
        problems.push(format!(
            "{}: needs.subgroups is {} but the shader {} subgroup operations",
            k.name,
            k.needs.subgroups,
            if subgroups { "uses" } else { "has no" }
        ));
    }
    Ok(problems)
}

pub fn validate_all(verbose: bool) -> Result<()> {
    let files = validate_files(verbose)?;
    let registry = kernels::registry();
    let mut problems = Vec::new();
    if verbose {
        println!("\n{:<28} {:<22} {:>6} {:>8} {:>8}  needs", "kernel", "entry", "groups", "storage", "uniform");
    }
    for k in &registry {
        problems.extend(check_bindings(k)?);
        if verbose {
            let mut needs = Vec::new();
            if k.needs.shader_f16 {
                needs.push("f16");
            }
            if k.needs.subgroups {
                needs.push("subgroups");
            }
            if k.needs.cooperative_matrix {
                needs.push("cooperative-matrix");
            }
            println!(
                "{:<28} {:<22} {:>6} {:>8} {:>8}  {}",
                k.name,
                k.entry,
                k.group_count(),
                k.storage_buffer_count(),
                k.uniform_buffer_count(),
                if needs.is_empty() { "-".to_string() } else { needs.join(", ") }
            );
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        bail!("{} binding mismatch(es) between launchers and shaders", problems.len());
    }
    if verbose {
        println!(
            "\n{} shader modules valid; {} kernels registered; every declared binding matches its shader",
            files.len(),
            registry.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shader_validates_and_every_launcher_matches_its_shader() {
        super::validate_all(false).unwrap();
    }

    #[test]
    fn a_broken_shader_is_reported_at_its_file_and_line() {
        use kernels::shader_check::{validate, Piece};
        let common = Piece { path: "common.wgsl", text: "fn helper() -> f32 {\n    return 1.0;\n}\n" };
        let kernel = Piece {
            path: "k/k.wgsl",
            text: "enable f16;\n\n@compute @workgroup_size(1)\nfn main() {\n    let x: f32 = 1u;\n}\n",
        };
        let e = validate("k.wgsl", &[common, kernel]).err().expect("must fail");
        assert_eq!((e.file.as_str(), e.line), ("k/k.wgsl", 5), "{e}");
        let bad_common = Piece { path: "common.wgsl", text: "fn helper() -> f32 {\n    return 1u;\n}\n" };
        let ok_kernel = Piece { path: "k/k.wgsl", text: "@compute @workgroup_size(1)\nfn main() {}\n" };
        let e = validate("k.wgsl", &[bad_common, ok_kernel]).err().expect("must fail");
        assert_eq!(e.file, "common.wgsl", "{e}");
        // A module of three files, directives in the middle one: the error is in the last file.
        let shared =
            Piece { path: "shared.wgsl", text: "// shared\nenable f16;\nfn two() -> f32 {\n    return 2.0;\n}\n" };
        let tail =
            Piece { path: "k/tail.wgsl", text: "\nfn three() -> f32 {\n    let t: f32 = 3u;\n    return t;\n}\n" };
        let e = validate("k.wgsl", &[common, shared, ok_kernel, tail]).err().expect("must fail");
        assert_eq!((e.file.as_str(), e.line), ("k/tail.wgsl", 3), "{e}");
        let bad_shared = Piece {
            path: "shared.wgsl",
            text: "enable f16;\nfn two() -> f16 {\n    let h: f16 = 1u;\n    return h;\n}\n",
        };
        let e = validate("k.wgsl", &[common, bad_shared, ok_kernel]).err().expect("must fail");
        assert_eq!((e.file.as_str(), e.line), ("shared.wgsl", 3), "{e}");
    }

    #[test]
    fn a_mismatched_declaration_is_reported() {
        let mut k = kernels::registry()[0];
        let mut b = k.bindings.to_vec();
        b[0].access = gpu_core::Access::ReadWrite;
        k.bindings = Box::leak(b.into_boxed_slice());
        let problems = super::check_bindings(&k).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("declared ReadWrite"), "{problems:?}");
    }
}
