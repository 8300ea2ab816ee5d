//! Composes kernel WGSL with the shared helpers and validates it with naga. Used by
//! `build.rs` (every shader at build time) and by `cargo xtask validate-shaders`.
//!
//! Composition: the kernel's leading directives (`enable ...;`), then `common.wgsl`, then the
//! rest of the kernel. Errors are reported against the original file and line.

use std::fmt;

/// Capabilities a shader file asks for, derived from what it says: `enable f16;` needs
/// SHADER_FLOAT16, `enable wgpu_cooperative_matrix;` needs COOPERATIVE_MATRIX, and a file
/// named `*_subgroup.wgsl` needs subgroups. Everything else validates with none of them, which
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

/// A composed shader: what the GPU compiles, and how to map its lines back to files.
pub struct Composed {
    pub text: String,
    head_lines: usize,
    common_lines: usize,
}

impl Composed {
    /// `(is_common, line)` of composed line `line` (1-based).
    pub fn origin(&self, line: usize) -> (bool, usize) {
        if line <= self.head_lines {
            (false, line)
        } else if line <= self.head_lines + self.common_lines {
            (true, line - self.head_lines)
        } else {
            (false, line - self.common_lines)
        }
    }
}

pub fn compose(common: &str, kernel: &str) -> Composed {
    let (_, head_lines) = leading_directives(kernel);
    let lines: Vec<&str> = kernel.lines().collect();
    let mut text = String::with_capacity(common.len() + kernel.len() + 2);
    for l in &lines[..head_lines] {
        text.push_str(l);
        text.push('\n');
    }
    let common_lines = common.lines().count();
    for l in common.lines() {
        text.push_str(l);
        text.push('\n');
    }
    for l in &lines[head_lines..] {
        text.push_str(l);
        text.push('\n');
    }
    Composed { text, head_lines, common_lines }
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

/// Parses and validates `kernel` (at `kernel_path`) composed with `common` (at `common_path`).
pub fn validate(common_path: &str, common: &str, kernel_path: &str, kernel: &str) -> Result<Validated, ShaderError> {
    let file_name = kernel_path.rsplit('/').next().unwrap_or(kernel_path);
    let needs = ShaderNeeds::of(file_name, kernel);
    let composed = compose(common, kernel);
    let locate = |loc: Option<naga::SourceLocation>, message: String| {
        let (line, column) = loc.map(|l| (l.line_number as usize, l.line_position as usize)).unwrap_or((0, 0));
        let (in_common, line) = if line == 0 { (false, 0) } else { composed.origin(line) };
        ShaderError {
            file: if in_common { common_path.to_string() } else { kernel_path.to_string() },
            line,
            column,
            message,
        }
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
