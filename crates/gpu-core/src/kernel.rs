/// How a kernel uses one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
    /// `var<uniform>`
    Uniform,
}

impl Access {
    pub fn is_storage(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }
}

/// One declared binding of a kernel. The launcher's declaration is checked against what naga
/// reads from the shader (`cargo xtask validate-shaders`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    pub group: u32,
    pub binding: u32,
    pub access: Access,
    /// The WGSL variable name, for error messages and the binding check.
    pub name: &'static str,
}

impl Binding {
    pub const fn read(group: u32, binding: u32, name: &'static str) -> Self {
        Binding { group, binding, access: Access::Read, name }
    }
    pub const fn read_write(group: u32, binding: u32, name: &'static str) -> Self {
        Binding { group, binding, access: Access::ReadWrite, name }
    }
    pub const fn uniform(group: u32, binding: u32, name: &'static str) -> Self {
        Binding { group, binding, access: Access::Uniform, name }
    }
}

/// Adapter features a kernel cannot run without.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Needs {
    pub shader_f16: bool,
    pub subgroups: bool,
    pub cooperative_matrix: bool,
}

/// A compute kernel as the GPU layer sees it: its name, complete WGSL text, entry point and
/// declared bindings (bind groups are numbered from 0 without gaps).
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    pub name: &'static str,
    pub wgsl: &'static str,
    pub entry: &'static str,
    pub bindings: &'static [Binding],
    pub needs: Needs,
}

impl KernelSource {
    /// Number of bind groups (highest group index + 1).
    pub fn group_count(&self) -> u32 {
        self.bindings.iter().map(|b| b.group + 1).max().unwrap_or(0)
    }

    /// The bindings of one group, ordered by binding index.
    pub fn group(&self, group: u32) -> Vec<Binding> {
        let mut v: Vec<Binding> = self.bindings.iter().copied().filter(|b| b.group == group).collect();
        v.sort_by_key(|b| b.binding);
        v
    }

    pub fn storage_buffer_count(&self) -> u64 {
        self.bindings.iter().filter(|b| b.access.is_storage()).count() as u64
    }

    pub fn uniform_buffer_count(&self) -> u64 {
        self.bindings.iter().filter(|b| b.access == Access::Uniform).count() as u64
    }
}
