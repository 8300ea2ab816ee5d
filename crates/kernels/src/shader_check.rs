//! Composes the kernels' WGSL modules from their files and validates them with naga. Used by
//! `build.rs` (every module at build time) and by `cargo xtask validate-shaders`.
//!
//! A module is `common.wgsl` followed by one kernel file, or the files [`COMPOSED`] lists. The
//! composed text has every file's leading directives (`enable ...;`) first, then the files in
//! order. Errors are reported against the original file and line.

use std::fmt;

/// Capabilities a shader file asks for, derived from what it says: `enable f16;` needs
/// SHADER_FLOAT16, `enable wgpu_cooperative_matrix;` needs COOPERATIVE_MATRIX, and a file
/// module named `*_subgroup.wgsl` needs subgroups. Everything else validates with none of them, which
/// proves the plain variants run on adapters without those features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShaderNeeds {
    pub f16: bool,
    pub subgroups: bool,
    pub cooperative_matrix: bool,
}

impl ShaderNeeds {
    pub fn of(file_name: &str, source: &str) -> Self {
        let directives: Vec<&str> = leading_directives(source).0;
        let has = |what: &str| directives.iter().any(|d| d.contains(what));
        ShaderNeeds {
            f16: has("f16"),
            subgroups: file_name.ends_with("_subgroup.wgsl") || file_name.contains("_subgroup_"),
            cooperative_matrix: has("wgpu_cooperative_matrix"),
        }
    }

    pub fn capabilities(self) -> naga::valid::Capabilities {
        use naga::valid::Capabilities as C;
        // pack/unpack2x16float: granted by wgpu wherever the downlevel flag SHADER_F16_IN_F32
        // holds (every Vulkan, Metal and DX12 adapter).
        let mut c = C::SHADER_FLOAT16_IN_FLOAT32;
        if self.f16 {
            c |= C::SHADER_FLOAT16;
        }
        if self.subgroups {
            c |= C::SUBGROUP | C::SUBGROUP_BARRIER;
        }
        if self.cooperative_matrix {
            c |= C::COOPERATIVE_MATRIX | C::SHADER_FLOAT16;
        }
        c
    }
}

fn is_directive(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("enable ") || t.starts_with("requires ") || t.starts_with("diagnostic(")
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with("//")
}

/// The directive lines at the top of `source` (comments and blank lines may come between
/// them), and the number of lines they span.
fn leading_directives(source: &str) -> (Vec<&str>, usize) {
    let mut directives = Vec::new();
    let mut span = 0;
    for (i, line) in source.lines().enumerate() {
        if is_directive(line) {
            directives.push(line);
            span = i + 1;
        } else if !is_blank_or_comment(line) {
            break;
        }
    }
    (directives, span)
}

/// One source file of a module: its path (for error messages) and its text.
#[derive(Clone, Copy, Debug)]
pub struct Piece<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

/// Modules made of more than one file under `src/` besides `common.wgsl`: the module's name (the
/// file `build.rs` writes for the launchers to include) and its files, in order. Every other
/// `src/<unit>/<name>.wgsl` is a module of its own, `common.wgsl` + the file, named `<name>.wgsl`.
/// `weights.wgsl` holds the weight bindings, the format override and the decoders of every weight
/// format (the matrix kernels and the embedding); `weight_chunks.wgsl` the matrix kernels' chunk
/// decoders of the block formats other than Q8_0; `projection.wgsl` what the matrix kernels share
/// (the segment overrides, `seg_pick`);
/// the two matvec modules share one body and differ in the final reduction, because a module
/// with subgroup operations cannot be created on an adapter without subgroups.
pub const COMPOSED: &[(&str, &[&str])] = &[
    ("embedding.wgsl", &["weights.wgsl", "reduce.wgsl", "embedding/embedding.wgsl"]),
    ("matvec.wgsl", &["weights.wgsl", "weight_chunks.wgsl", "projection.wgsl", "matvec/matvec.wgsl", "reduce.wgsl"]),
    (
        "matvec_subgroup.wgsl",
        &["weights.wgsl", "weight_chunks.wgsl", "projection.wgsl", "matvec/matvec.wgsl", "reduce_subgroup.wgsl"],
    ),
    ("matmul.wgsl", &["weights.wgsl", "weight_chunks.wgsl", "projection.wgsl", "matmul/matmul.wgsl"]),
    ("matmul_coop.wgsl", &["weights.wgsl", "weight_chunks.wgsl", "projection.wgsl", "matmul_coop/matmul_coop.wgsl"]),
];

/// The shared helpers every module starts with, relative to `src/`.
pub const COMMON: &str = "common.wgsl";

/// One module the crate builds: its name and its files relative to `src/` (`common.wgsl` first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFiles {
    pub name: String,
    pub files: Vec<String>,
}

/// Every module of the kernels crate whose sources are in `src` (sorted by name): those of
/// [`COMPOSED`], and one per other `.wgsl` file of a unit folder.
pub fn modules(src: &std::path::Path) -> std::io::Result<Vec<ModuleFiles>> {
    let with_common = |files: &[&str]| std::iter::once(COMMON).chain(files.iter().copied()).map(String::from).collect();
    let mut out: Vec<ModuleFiles> = COMPOSED
        .iter()
        .map(|(name, files)| ModuleFiles { name: name.to_string(), files: with_common(files) })
        .collect();
    let in_composed = |rel: &str| COMPOSED.iter().any(|(_, files)| files.contains(&rel));
    for unit in std::fs::read_dir(src)?.flatten().filter(|e| e.path().is_dir()) {
        for f in std::fs::read_dir(unit.path())?.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".wgsl") {
                continue;
            }
            let rel = format!("{}/{name}", unit.file_name().to_string_lossy());
            if !in_composed(&rel) {
                out.push(ModuleFiles { name, files: with_common(&[&rel]) });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A composed shader: what the GPU compiles, and how to map its lines back to files.
pub struct Composed {
    pub text: String,
    /// Per run of composed lines: its first composed line (1-based), the piece, and the piece's
    /// line at that point.
    runs: Vec<(usize, usize, usize)>,
}

impl Composed {
    /// `(piece index, line in that piece)` of composed line `line` (1-based).
    pub fn origin(&self, line: usize) -> (usize, usize) {
        let run = self.runs.iter().rev().find(|r| r.0 <= line).copied().unwrap_or((1, 0, 1));
        (run.1, run.2 + (line - run.0))
    }
}

/// The pieces' leading directives (`enable ...;`) first, then each piece without them, in order.
pub fn compose(pieces: &[Piece<'_>]) -> Composed {
    let mut text = String::new();
    let mut runs = Vec::new();
    let mut line = 1;
    let heads: Vec<usize> = pieces.iter().map(|p| leading_directives(p.text).1).collect();
    for (i, (p, &head)) in pieces.iter().zip(&heads).enumerate() {
        if head > 0 {
            runs.push((line, i, 1));
            for l in p.text.lines().take(head) {
                text.push_str(l);
                text.push('\n');
                line += 1;
            }
        }
    }
    for (i, (p, &head)) in pieces.iter().zip(&heads).enumerate() {
        runs.push((line, i, head + 1));
        for l in p.text.lines().skip(head) {
            text.push_str(l);
            text.push('\n');
            line += 1;
        }
    }
    Composed { text, runs }
}

/// A validation failure located in the original files.
#[derive(Debug)]
pub struct ShaderError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ShaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        src = s.source();
    }
    msg
}

/// A shader that parsed and validated.
pub struct Validated {
    pub composed: Composed,
    pub module: naga::Module,
    pub info: naga::valid::ModuleInfo,
}

/// Parses and validates module `name` composed of `pieces` (`common.wgsl` first). The needs
/// come from the module's name and its directives ([`ShaderNeeds::of`]).
pub fn validate(name: &str, pieces: &[Piece<'_>]) -> Result<Validated, ShaderError> {
    let composed = compose(pieces);
    let needs = ShaderNeeds::of(name, &composed.text);
    let locate = |loc: Option<naga::SourceLocation>, message: String| {
        let (line, column) = loc.map(|l| (l.line_number as usize, l.line_position as usize)).unwrap_or((0, 0));
        let (piece, line) = if line == 0 { (pieces.len() - 1, 0) } else { composed.origin(line) };
        ShaderError { file: pieces[piece].path.to_string(), line, column, message }
    };
    let module = match naga::front::wgsl::parse_str(&composed.text) {
        Ok(m) => m,
        Err(e) => {
            let mut msg = e.message().to_string();
            for (_, label) in e.labels() {
                if !label.is_empty() {
                    msg.push_str(&format!(" ({label})"));
                }
            }
            return Err(locate(e.location(&composed.text), msg));
        }
    };
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), needs.capabilities());
    if needs.subgroups {
        validator.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
        validator.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    match validator.validate(&module) {
        Ok(info) => Ok(Validated { composed, module, info }),
        Err(e) => {
            let loc = e.location(&composed.text);
            Err(locate(loc, chain(&e)))
        }
    }
}
