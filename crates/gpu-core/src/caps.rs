use wgpu::{Features, Limits};

/// How much of the adapter the device asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LimitsPolicy {
    /// Ask for what the adapter offers where it helps: storage buffers per stage, binding and
    /// buffer sizes, workgroup storage and invocations, bind groups.
    #[default]
    Max,
    /// Keep WebGPU's defaults (8 storage buffers per stage, 128 MiB bindings), so that every
    /// path can be proven to run where limits are low (browsers, phones).
    Default,
}

impl LimitsPolicy {
    /// The policy's name as `FromStr` parses it and errors print it (`max`, `default`).
    pub fn name(self) -> &'static str {
        match self {
            LimitsPolicy::Max => "max",
            LimitsPolicy::Default => "default",
        }
    }

    /// The limits to request from an adapter offering `adapter`.
    pub fn limits_for(self, adapter: &Limits) -> Limits {
        let base = Limits::default();
        match self {
            LimitsPolicy::Default => base,
            LimitsPolicy::Max => Limits {
                max_storage_buffers_per_shader_stage: adapter.max_storage_buffers_per_shader_stage,
                max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
                max_buffer_size: adapter.max_buffer_size,
                max_compute_workgroup_storage_size: adapter.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: adapter.max_compute_invocations_per_workgroup,
                max_compute_workgroup_size_x: adapter.max_compute_workgroup_size_x,
                max_compute_workgroup_size_y: adapter.max_compute_workgroup_size_y,
                max_compute_workgroup_size_z: adapter.max_compute_workgroup_size_z,
                max_compute_workgroups_per_dimension: adapter.max_compute_workgroups_per_dimension,
                max_bind_groups: adapter.max_bind_groups,
                max_bindings_per_bind_group: adapter.max_bindings_per_bind_group,
                max_uniform_buffer_binding_size: adapter.max_uniform_buffer_binding_size,
                max_immediate_size: adapter.max_immediate_size,
                ..base
            },
        }
    }
}

impl std::str::FromStr for LimitsPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "max" => Ok(LimitsPolicy::Max),
            "default" => Ok(LimitsPolicy::Default),
            other => Err(format!("unknown limits policy '{other}' (expected max or default)")),
        }
    }
}

/// Subgroup sizes the adapter may run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubgroupSize {
    /// The smallest subgroup size, in invocations.
    pub min: u32,
    /// The largest subgroup size, in invocations.
    pub max: u32,
}

/// The granted limits and the capabilities in use, as one value the rest of the code asks.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// The adapter's name as the driver reports it.
    pub adapter_name: String,
    /// The graphics API the device runs on (Vulkan, Metal, DX12, GL).
    pub backend: wgpu::Backend,
    /// Discrete, integrated, virtual GPU or CPU.
    pub device_type: wgpu::DeviceType,
    /// The driver's name and version information.
    pub driver: String,
    /// The limits policy the device was created with.
    pub policy: LimitsPolicy,
    /// The limits the device was created with (exactly what validation enforces).
    pub limits: Limits,
    /// `SHADER_F16`: `f16` arithmetic in WGSL.
    pub shader_f16: bool,
    /// `SUBGROUP` with the adapter's subgroup size range; `None` without subgroups.
    pub subgroups: Option<SubgroupSize>,
    /// `TIMESTAMP_QUERY`: the device can write GPU timestamps.
    pub timestamps: bool,
    /// `TIMESTAMP_QUERY_INSIDE_PASSES`: timestamps between the dispatches of one compute pass.
    pub timestamps_inside_passes: bool,
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX` with the tile shapes the adapter lists (empty when the
    /// feature is absent or disabled through `ContextOptions::disabled_features`).
    pub cooperative_matrix: Vec<wgpu::CooperativeMatrixProperties>,
    /// The subgroup sizes the adapter reports, whether or not `SUBGROUP` is in use
    /// (cooperative-matrix kernels split a workgroup into subgroups by local index).
    pub adapter_subgroup_size: SubgroupSize,
}

impl Capabilities {
    /// Whether the adapter is a CPU (a software driver such as lavapipe): kernels pick
    /// launch shapes for CPU cores and SIMD lanes there instead of for a GPU's SMs.
    pub fn is_cpu(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu
    }

    /// The device features to request from an adapter offering `available`, minus `disabled`.
    pub fn wanted_features(available: Features, disabled: Features) -> Features {
        let wanted = Features::SHADER_F16
            | Features::SUBGROUP
            | Features::SUBGROUP_BARRIER
            | Features::TIMESTAMP_QUERY
            | Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let mut f = available & wanted & !disabled;
        // Inside-pass timestamps are meaningless without timestamps.
        if !f.contains(Features::TIMESTAMP_QUERY) {
            f.remove(Features::TIMESTAMP_QUERY_INSIDE_ENCODERS | Features::TIMESTAMP_QUERY_INSIDE_PASSES);
        }
        // Cooperative matrices are only usable with f16 in naga 30.
        if !f.contains(Features::SHADER_F16) {
            f.remove(Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        }
        f
    }

    /// Whether subgroup operations are in use (`SUBGROUP` granted).
    pub fn has_subgroups(&self) -> bool {
        self.subgroups.is_some()
    }

    /// Whether cooperative matrices are in use, with at least one tile shape.
    pub fn has_cooperative_matrix(&self) -> bool {
        !self.cooperative_matrix.is_empty()
    }

    /// Whether the one cooperative-matrix configuration naga 30 can spell is available:
    /// 16x16x16 tiles with f16 inputs and an f32 accumulator (`coop_mat16x16<f16, A|B>`,
    /// `coop_mat16x16<f32, C>`).
    pub fn has_coop_f16_16x16x16_f32(&self) -> bool {
        use wgpu::CooperativeScalarType as S;
        self.shader_f16
            && self.cooperative_matrix.iter().any(|p| {
                p.m_size == 16 && p.n_size == 16 && p.k_size == 16 && p.ab_type == S::F16 && p.cr_type == S::F32
            })
    }

    /// Names of the features in use, for display.
    pub fn feature_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.shader_f16 {
            v.push("SHADER_F16".to_string());
        }
        if let Some(s) = self.subgroups {
            v.push(if s.min == s.max {
                format!("SUBGROUP(size {})", s.min)
            } else {
                format!("SUBGROUP(size {}..{})", s.min, s.max)
            });
        }
        if self.timestamps {
            v.push(if self.timestamps_inside_passes {
                "TIMESTAMP_QUERY(+inside passes)".to_string()
            } else {
                "TIMESTAMP_QUERY".to_string()
            });
        }
        if self.has_cooperative_matrix() {
            v.push(format!("EXPERIMENTAL_COOPERATIVE_MATRIX({} shapes)", self.cooperative_matrix.len()));
        }
        v
    }
}
