use wgpu::{Adapter, Backend, DeviceType, Instance};

/// A wgpu instance built from the environment, so that `WGPU_BACKEND`, `WGPU_DEBUG` and
/// friends are honoured.
pub fn new_instance() -> Instance {
    Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Which adapter to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AdapterSelector {
    /// The most capable adapter: discrete before integrated before virtual before CPU, and a
    /// native API (Vulkan, Metal, DX12) before GL on the same device type.
    #[default]
    HighPerformance,
    /// The n-th adapter in the order [`list_adapters`] prints.
    Index(usize),
    /// The first adapter whose name contains this text (case-insensitive).
    Name(String),
    /// The most capable adapter of this backend.
    Backend(Backend),
}

impl std::str::FromStr for AdapterSelector {
    type Err = String;
    /// A number selects by index, a backend name (`vulkan`, `metal`, `dx12`, `gl`) by backend,
    /// anything else by name substring.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(i) = s.parse::<usize>() {
            return Ok(AdapterSelector::Index(i));
        }
        if let Some(b) = parse_backend(s) {
            return Ok(AdapterSelector::Backend(b));
        }
        if s.is_empty() {
            return Err("empty adapter name".into());
        }
        Ok(AdapterSelector::Name(s.to_string()))
    }
}

/// Parses a backend name as users write it.
pub(crate) fn parse_backend(s: &str) -> Option<Backend> {
    match s.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Some(Backend::Vulkan),
        "metal" | "mtl" => Some(Backend::Metal),
        "dx12" | "d3d12" => Some(Backend::Dx12),
        "gl" | "gles" | "opengl" => Some(Backend::Gl),
        _ => None,
    }
}

/// What `rwkv-cli adapters` prints for one adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter's position in [`list_adapters`]' order ([`AdapterSelector::Index`]).
    pub index: usize,
    /// The adapter's name as the driver reports it.
    pub name: String,
    /// The graphics API (Vulkan, Metal, DX12, GL).
    pub backend: Backend,
    /// Discrete, integrated, virtual GPU or CPU.
    pub device_type: DeviceType,
    /// The driver's name and version information.
    pub driver: String,
    /// The best limits the adapter offers (not those a device gets: see [`crate::LimitsPolicy`]).
    pub limits: wgpu::Limits,
    /// Every feature the adapter offers.
    pub features: wgpu::Features,
    /// The smallest subgroup size, in invocations.
    pub subgroup_min_size: u32,
    /// The largest subgroup size, in invocations.
    pub subgroup_max_size: u32,
    /// The cooperative-matrix tile shapes and types the adapter lists (empty without the feature).
    pub cooperative_matrix: Vec<wgpu::CooperativeMatrixProperties>,
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        DeviceType::DiscreteGpu => 0,
        DeviceType::IntegratedGpu => 1,
        DeviceType::VirtualGpu => 2,
        DeviceType::Cpu => 3,
        DeviceType::Other => 4,
    };
    let api = match info.backend {
        Backend::Vulkan | Backend::Metal | Backend::Dx12 => 0,
        _ => 1,
    };
    (ty, api)
}

/// All adapters the instance sees, most capable first (the order [`AdapterSelector::Index`]
/// refers to).
pub fn sorted_adapters(instance: &Instance) -> Vec<Adapter> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| rank(&a.get_info()));
    adapters
}

/// A summary of every adapter `instance` sees, most capable first (the order of
/// [`AdapterSelector::Index`]).
pub fn list_adapters(instance: &Instance) -> Vec<AdapterSummary> {
    sorted_adapters(instance)
        .into_iter()
        .enumerate()
        .map(|(index, a)| {
            let info = a.get_info();
            let features = a.features();
            AdapterSummary {
                index,
                name: info.name.clone(),
                backend: info.backend,
                device_type: info.device_type,
                driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
                limits: a.limits(),
                features,
                subgroup_min_size: info.subgroup_min_size,
                subgroup_max_size: info.subgroup_max_size,
                cooperative_matrix: if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
                    a.cooperative_matrix_properties()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Picks the adapter `selector` names, or says which ones exist.
pub(crate) fn select_adapter(instance: &Instance, selector: &AdapterSelector) -> Result<Adapter, crate::GpuError> {
    let adapters = sorted_adapters(instance);
    let names = || {
        if adapters.is_empty() {
            " (is a Vulkan, Metal or DX12 driver installed? On Debian: apt-get install \
             libvulkan1 mesa-vulkan-drivers)"
                .to_string()
        } else {
            let list: Vec<String> = adapters
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let info = a.get_info();
                    format!("{i}: {} ({:?})", info.name, info.backend)
                })
                .collect();
            format!(" matching {selector:?}; available: {}", list.join(", "))
        }
    };
    let found = match selector {
        AdapterSelector::HighPerformance => adapters.first().cloned(),
        AdapterSelector::Index(i) => adapters.get(*i).cloned(),
        AdapterSelector::Name(n) => {
            let n = n.to_lowercase();
            adapters.iter().find(|a| a.get_info().name.to_lowercase().contains(&n)).cloned()
        }
        AdapterSelector::Backend(b) => adapters.iter().find(|a| a.get_info().backend == *b).cloned(),
    };
    found.ok_or_else(|| crate::GpuError::NoAdapter(names()))
}
