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
    /// Whether the binding is a storage buffer (read or read-write), not a uniform.
    pub fn is_storage(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }
}

/// One declared binding of a kernel. The launcher's declaration is checked against what naga
/// reads from the shader (`cargo xtask validate-shaders`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The bind group index (`@group`).
    pub group: u32,
    /// The binding index inside the group (`@binding`).
    pub binding: u32,
    /// How the kernel uses the buffer.
    pub access: Access,
    /// The WGSL variable name, for error messages and the binding check.
    pub name: &'static str,
}

impl Binding {
    /// A read-only storage binding.
    pub const fn read(group: u32, binding: u32, name: &'static str) -> Self {
        Binding { group, binding, access: Access::Read, name }
    }
    /// A read-write storage binding.
    pub const fn read_write(group: u32, binding: u32, name: &'static str) -> Self {
        Binding { group, binding, access: Access::ReadWrite, name }
    }
    /// A uniform binding.
    pub const fn uniform(group: u32, binding: u32, name: &'static str) -> Self {
        Binding { group, binding, access: Access::Uniform, name }
    }
}

/// Adapter features a kernel cannot run without.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Needs {
    /// `SHADER_F16`: the kernel uses `f16` arithmetic.
    pub shader_f16: bool,
    /// `SUBGROUP`: the kernel uses subgroup operations.
    pub subgroups: bool,
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX`: the kernel uses cooperative-matrix (tensor core) tiles.
    pub cooperative_matrix: bool,
}

/// A compute kernel as the GPU layer sees it: its name, complete WGSL text, entry point and
/// declared bindings (bind groups are numbered from 0 without gaps).
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// The kernel's name, used as the pipeline label and in errors.
    pub name: &'static str,
    /// The complete WGSL module.
    pub wgsl: &'static str,
    /// The entry point's name.
    pub entry: &'static str,
    /// Every binding the entry point uses.
    pub bindings: &'static [Binding],
    /// The adapter features the module needs.
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

    /// Number of storage bindings (checked against `max_storage_buffers_per_shader_stage`).
    pub fn storage_buffer_count(&self) -> u64 {
        self.bindings.iter().filter(|b| b.access.is_storage()).count() as u64
    }

    /// Number of uniform bindings (checked against `max_uniform_buffers_per_shader_stage`).
    pub fn uniform_buffer_count(&self) -> u64 {
        self.bindings.iter().filter(|b| b.access == Access::Uniform).count() as u64
    }
}
