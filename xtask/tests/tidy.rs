//! The rules of ARCHITECTURE.md, checked on the source tree (in the manner of rust-analyzer's
//! `xtask/src/tidy.rs`). Each failure names the file and line and says what to do.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The longest a `.rs` or `.wgsl` file may be.
const MAX_LINES: usize = 600;

/// Crates that are programs: they may print and use `anyhow`.
const PROGRAMS: [&str; 2] = ["rwkv-cli", "xtask"];

/// The test-support crate: printing `SKIPPED` lines is its job, so it may only ever be a
/// dev-dependency.
const TEST_SUPPORT: &str = "test-data";

/// Dependencies each crate may not have (ARCHITECTURE.md: "gpu-core knows nothing of kernels;
/// kernels knows nothing of RWKV files or models; gguf-file knows nothing of RWKV"; the server
/// sits above rwkv-model and below rwkv-cli).
const FORBIDDEN_DEPS: [(&str, &[&str]); 5] = [
    ("gpu-core", &["kernels", "gguf-file", "rwkv-model", "rwkv-server"]),
    ("kernels", &["gguf-file", "rwkv-model", "rwkv-server"]),
    ("gguf-file", &["gpu-core", "kernels", "rwkv-model", "rwkv-server"]),
    ("rwkv-model", &["rwkv-server"]),
    ("rwkv-server", &["rwkv-cli"]),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `path` relative to the workspace root, for messages.
fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", rel(path)))
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Collected rule breaks; the test fails listing them all.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, path: &Path, line: usize, what: impl AsRef<str>) {
        self.0.push(format!("{}:{line}: {}", rel(path), what.as_ref()));
    }
    fn assert_none(self, rule: &str) {
        if !self.0.is_empty() {
            let mut msg = format!("{rule}: {} problem(s)\n", self.0.len());
            for p in &self.0 {
                writeln!(msg, "  {p}").unwrap();
            }
            panic!("{msg}");
        }
    }
}

/// Source files under the workspace's crates and xtask with the given extension (no `target/`).
fn source_files(ext: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for top in ["crates", "xtask"] {
        for entry in walkdir::WalkDir::new(root().join(top)).sort_by_file_name() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().is_file() && path.extension().is_some_and(|e| e == ext) {
                files.push(path.to_path_buf());
            }
        }
    }
    files
}

// ---------------------------------------------------------------------------------------------
// Manifests

/// One crate of the workspace.
struct Package {
    name: String,
    manifest: PathBuf,
}

fn packages() -> Vec<Package> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs.push(root().join("xtask"));
    dirs.into_iter()
        .map(|dir| {
            let manifest = dir.join("Cargo.toml");
            let doc = toml_edit::Document::parse(read(&manifest)).unwrap();
            let name = doc["package"]["name"].as_str().expect("package.name").to_string();
            Package { name, manifest }
        })
        .collect()
}

/// A dependency as written in a manifest.
struct Dep {
    /// The package depended on (`package = "..."` where renamed).
    package: String,
    /// `dependencies`, `dev-dependencies` or `build-dependencies` (of a target table, too).
    section: String,
    line: usize,
}

fn deps(manifest: &Path) -> Vec<Dep> {
    let text = read(manifest);
    let doc = toml_edit::Document::parse(text.as_str()).unwrap_or_else(|e| panic!("{}: {e}", rel(manifest)));
    let mut tables: Vec<(String, &toml_edit::Table)> = Vec::new();
    let sections = ["dependencies", "dev-dependencies", "build-dependencies"];
    for section in sections {
        if let Some(t) = doc.get(section).and_then(|i| i.as_table()) {
            tables.push((section.to_string(), t));
        }
    }
    if let Some(targets) = doc.get("target").and_then(|i| i.as_table()) {
        for (cfg, item) in targets.iter() {
            for section in sections {
                if let Some(t) = item.get(section).and_then(|i| i.as_table()) {
                    tables.push((format!("target.{cfg}.{section}"), t));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (section, table) in tables {
        for (name, item) in table.iter() {
            let (key, _) = table.get_key_value(name).unwrap();
            let offset = key.span().or_else(|| item.span()).map_or(0, |s| s.start);
            let package = item.get("package").and_then(|p| p.as_str()).unwrap_or(name).to_string();
            out.push(Dep { package, section: section.clone(), line: line_of(&text, offset) });
        }
    }
    out
}

#[test]
fn layers_depend_only_on_the_layers_they_may_know() {
    let mut problems = Problems::default();
    for pkg in packages() {
        let forbidden = FORBIDDEN_DEPS.iter().find(|(name, _)| *name == pkg.name).map_or(&[][..], |(_, f)| *f);
        for dep in deps(&pkg.manifest) {
            if forbidden.contains(&dep.package.as_str()) {
                problems.add(
                    &pkg.manifest,
                    dep.line,
                    format!(
                        "{} may not depend on {} ([{}]): move the code that needs it up to a crate that may \
                         (see the layers in ARCHITECTURE.md)",
                        pkg.name, dep.package, dep.section
                    ),
                );
            }
            if dep.package == TEST_SUPPORT && dep.section != "dev-dependencies" {
                problems.add(
                    &pkg.manifest,
                    dep.line,
                    format!("{TEST_SUPPORT} is test support: list it under [dev-dependencies] only"),
                );
            }
        }
    }
    problems.assert_none("dependency between layers that ARCHITECTURE.md forbids");
}

#[test]
fn anyhow_only_in_programs() {
    let mut problems = Problems::default();
    for pkg in packages().iter().filter(|p| !PROGRAMS.contains(&p.name.as_str())) {
        for dep in deps(&pkg.manifest).iter().filter(|d| d.package == "anyhow") {
            problems.add(
                &pkg.manifest,
                dep.line,
                format!(
                    "{} is a library and lists anyhow: return a `thiserror` error type naming the problem \
                     (anyhow only in {})",
                    pkg.name,
                    PROGRAMS.join(" and ")
                ),
            );
        }
    }
    problems.assert_none("anyhow outside the programs");
}

// ---------------------------------------------------------------------------------------------
// Library code does not print

const PRINT_MACROS: [&str; 5] = ["println", "eprintln", "print", "eprint", "dbg"];

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        (a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
            || a.path().is_ident("test")
    })
}

/// Walks one file's non-test items, noting print macros and the out-of-line modules it declares.
struct PrintFinder<'a> {
    file: &'a Path,
    /// Where the children of the module being visited live (`mod x;` is `dir/x.rs` or `dir/x/mod.rs`).
    dir: PathBuf,
    modules: Vec<(PathBuf, PathBuf)>,
    problems: &'a mut Problems,
}

impl<'ast> Visit<'ast> for PrintFinder<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            return;
        }
        let name = m.ident.to_string();
        match &m.content {
            None => {
                let flat = self.dir.join(format!("{name}.rs"));
                let file = if flat.is_file() { flat } else { self.dir.join(&name).join("mod.rs") };
                self.modules.push((file, self.dir.join(&name)));
            }
            Some(_) => {
                let inner = self.dir.join(&name);
                let outer = std::mem::replace(&mut self.dir, inner);
                syn::visit::visit_item_mod(self, m);
                self.dir = outer;
            }
        }
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }
    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if !is_cfg_test(&i.attrs) {
            syn::visit::visit_item_impl(self, i);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if let Some(last) = mac.path.segments.last() {
            let name = last.ident.to_string();
            if PRINT_MACROS.contains(&name.as_str()) {
                let line = last.ident.span().start().line;
                self.problems.add(
                    self.file,
                    line,
                    format!(
                        "`{name}!` in library code: return the information (or a typed error) and let \
                         rwkv-cli print it; tests and test modules (`#[cfg(test)]`) may print"
                    ),
                );
            }
        }
        syn::visit::visit_macro(self, mac);
    }
}

#[test]
fn libraries_do_not_print() {
    let mut problems = Problems::default();
    let mut checked = 0;
    for pkg in packages() {
        if PROGRAMS.contains(&pkg.name.as_str()) || pkg.name == TEST_SUPPORT {
            continue;
        }
        let src = pkg.manifest.parent().unwrap().join("src");
        // The module tree from lib.rs, leaving out `#[cfg(test)]` modules and items.
        let mut pending = vec![(src.join("lib.rs"), src.clone())];
        while let Some((file, dir)) = pending.pop() {
            let text = read(&file);
            let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", rel(&file)));
            let mut finder = PrintFinder { file: &file, dir, modules: Vec::new(), problems: &mut problems };
            finder.visit_file(&ast);
            pending.extend(finder.modules);
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} library files found");
    problems.assert_none("printing in a library");
}

// ---------------------------------------------------------------------------------------------
// Sizes and WGSL

#[test]
fn source_files_are_at_most_600_lines() {
    let mut problems = Problems::default();
    for path in source_files("rs").into_iter().chain(source_files("wgsl")) {
        let lines = read(&path).lines().count();
        if lines > MAX_LINES {
            problems.add(
                &path,
                MAX_LINES + 1,
                format!("{lines} lines (at most {MAX_LINES}): split it into files of one job each"),
            );
        }
    }
    problems.assert_none("source file too long");
}

/// WGSL text with `//` and `/* */` comments blanked (offsets and lines kept).
fn strip_wgsl_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut depth = 0usize;
    while i < bytes.len() {
        let two = &bytes[i..(i + 2).min(bytes.len())];
        if depth == 0 && two == b"//" {
            while i < bytes.len() && bytes[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
            continue;
        }
        if two == b"/*" {
            depth += 1;
        }
        if depth > 0 {
            let closing = two == b"*/";
            if bytes[i] != b'\n' {
                out[i] = b' ';
            }
            if closing {
                out[i + 1] = b' ';
                depth -= 1;
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The functions a WGSL file defines, with their lines, leaving out entry points (`@compute`
/// etc.): every shader has its own `main`.
fn wgsl_functions(text: &str) -> Vec<(String, usize)> {
    let code = strip_wgsl_comments(text);
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut declaration_start = 0;
    for (at, _) in code.match_indices("fn") {
        let before_ok = code[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let rest = &code[at + 2..];
        let name_start = rest.len() - rest.trim_start().len();
        if !before_ok || name_start == 0 {
            continue;
        }
        let name: String = rest[name_start..].chars().take_while(|&c| is_ident(c)).collect();
        if name.is_empty() || !rest[name_start + name.len()..].trim_start().starts_with('(') {
            continue;
        }
        // The attributes of this function: the text since the previous declaration ended.
        let since = code[..at].rfind(['}', ';']).map_or(0, |p| p + 1).max(declaration_start);
        let attributes = &code[since..at];
        declaration_start = at;
        if ["@compute", "@vertex", "@fragment"].iter().any(|a| attributes.contains(a)) {
            continue;
        }
        out.push((name, line_of(&code, at)));
    }
    out
}

/// `X.wgsl` beside `path` when `path` is `X_subgroup.wgsl`.
fn subgroup_sibling(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    name.strip_suffix("_subgroup.wgsl").map(|stem| path.with_file_name(format!("{stem}.wgsl")))
}

#[test]
fn no_wgsl_function_is_defined_twice() {
    let mut defined: BTreeMap<String, Vec<(PathBuf, usize)>> = BTreeMap::new();
    for path in source_files("wgsl") {
        for (name, line) in wgsl_functions(&read(&path)) {
            defined.entry(name).or_default().push((path.clone(), line));
        }
    }
    assert!(defined.contains_key("sigmoid"), "common.wgsl's helpers were not found");
    let mut problems = Problems::default();
    for places in defined.values_mut() {
        // `X_subgroup.wgsl` is the subgroup variant of `X.wgsl` beside it (never in one module
        // with it: shader_check::COMPOSED picks one or the other): a function both define is one
        // function in two implementations, not a copy.
        let plain: Vec<PathBuf> = places.iter().map(|(p, _)| p.clone()).collect();
        places.retain(|(p, _)| subgroup_sibling(p).is_none_or(|sibling| !plain.contains(&sibling)));
    }
    for (name, places) in defined.iter().filter(|(_, p)| p.len() > 1) {
        let others: Vec<String> = places[1..].iter().map(|(p, l)| format!("{}:{l}", rel(p))).collect();
        problems.add(
            &places[0].0,
            places[0].1,
            format!(
                "WGSL fn `{name}` is also defined at {}: keep one copy in crates/kernels/src/common.wgsl and \
                 call it from every shader (or give different functions different names)",
                others.join(", ")
            ),
        );
    }
    problems.assert_none("WGSL function defined more than once");
}

// ---------------------------------------------------------------------------------------------
// Every kernel has a GPU-vs-reference test

fn kernels_src() -> PathBuf {
    root().join("crates/kernels/src")
}

/// The units `kernels::registry()` lists (`unit::KERNEL...`), with the line of each.
fn registry_units() -> Vec<(String, usize)> {
    let lib = kernels_src().join("lib.rs");
    let text = read(&lib);
    let start = text.find("pub fn registry()").expect("kernels::registry() in crates/kernels/src/lib.rs");
    let end = start + text[start..].find("\n}").expect("the end of registry()");
    let mut units: Vec<(String, usize)> = Vec::new();
    for (at, _) in text[start..end].match_indices("::KERNEL") {
        let before = &text[start..start + at];
        let unit_start = before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
        let unit = before[unit_start..].to_string();
        if !units.iter().any(|(u, _)| *u == unit) {
            units.push((unit, line_of(&text, start + at)));
        }
    }
    units
}

/// What a unit's tests must show: a `#[test]`, the kernel's output read through a guard region
/// (`testing::Guarded`, which also catches out-of-bounds writes), and a comparison of it with a
/// value computed on the CPU.
const TEST_MARKERS: [(&str, &[&str]); 3] = [
    ("a #[test]", &["#[test]"]),
    ("an output read through `testing::Guarded`", &["Guarded"]),
    ("a comparison with the CPU result", &["assert_close(", "prop_assert_eq!(", "assert_eq!("]),
];

#[test]
fn every_kernel_has_a_reference_test() {
    let units = registry_units();
    assert!(units.len() >= 5, "registry() lists only {units:?}: is the registry parsed right?");
    let lib = kernels_src().join("lib.rs");
    let mut problems = Problems::default();
    // Every folder with a shader is a registered unit.
    for entry in std::fs::read_dir(kernels_src()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let mut shaders: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "wgsl"))
            .collect();
        shaders.sort();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if let Some(shader) = shaders.first().filter(|_| !units.iter().any(|(u, _)| *u == name)) {
            problems.add(
                shader,
                1,
                format!("the kernel unit {name} is not in kernels::registry(): add its KERNEL there"),
            );
        }
    }
    for (unit, registry_line) in &units {
        let dir = kernels_src().join(unit);
        let tests = dir.join("tests.rs");
        let what_to_do = format!(
            "add crates/kernels/src/{unit}/tests.rs (declared `#[cfg(test)] mod tests;` in its mod.rs) with \
             property tests that run the kernel into `testing::Guarded` outputs and compare them with a CPU \
             reference (`testing::assert_close`)"
        );
        if !tests.is_file() {
            problems.add(&lib, *registry_line, format!("kernel unit {unit} has no tests.rs: {what_to_do}"));
            continue;
        }
        let module = read(&dir.join("mod.rs"));
        if !module.contains("#[cfg(test)]\nmod tests;") {
            problems.add(
                &dir.join("mod.rs"),
                1,
                format!("{unit}/tests.rs is not compiled as a test module: {what_to_do}"),
            );
        }
        let text = read(&tests);
        for (what, markers) in TEST_MARKERS {
            if !markers.iter().any(|m| text.contains(m)) {
                problems.add(&tests, 1, format!("kernel unit {unit}'s tests lack {what}: {what_to_do}"));
            }
        }
    }
    problems.assert_none("kernel without a GPU-vs-reference test");
}
