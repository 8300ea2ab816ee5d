//! `rwkv-cli adapters`: every adapter wgpu sees, most capable first.

use anyhow::Result;
use clap::Args as ClapArgs;
use gpu_core::{list_adapters, new_instance, wgpu::Features};

use crate::device::DeviceArgs;

#[derive(ClapArgs)]
pub struct Args {}

pub fn run(_device: &DeviceArgs, _args: Args) -> Result<()> {
    let adapters = list_adapters(&new_instance());
    if adapters.is_empty() {
        anyhow::bail!(
            "no GPU adapter found; install a Vulkan driver (on Debian/Ubuntu: apt-get install libvulkan1 mesa-vulkan-drivers)"
        );
    }
    for a in adapters {
        println!("[{}] {} ({:?}, {:?})", a.index, a.name, a.backend, a.device_type);
        if !a.driver.is_empty() {
            println!("    driver: {}", a.driver);
        }
        let l = &a.limits;
        println!(
            "    limits: storage buffers/stage {}, storage binding {} MiB, buffer {} MiB, bind groups {}, \
             workgroup storage {} KiB, invocations/workgroup {}, immediates {} B",
            l.max_storage_buffers_per_shader_stage,
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_bind_groups,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_immediate_size,
        );
        let f = a.features;
        let yes = |b: bool| if b { "yes" } else { "no" };
        let subgroup = if f.contains(Features::SUBGROUP) {
            format!("yes (size {}..{})", a.subgroup_min_size, a.subgroup_max_size)
        } else {
            "no".into()
        };
        let coop = if a.cooperative_matrix.is_empty() {
            "no".to_string()
        } else {
            let shapes: Vec<String> = a
                .cooperative_matrix
                .iter()
                .map(|p| format!("{}x{}x{} {:?}->{:?}", p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type))
                .collect();
            format!("yes ({})", shapes.join(", "))
        };
        println!(
            "    features: SHADER_F16 {}, SUBGROUP {}, TIMESTAMP_QUERY {} (inside passes {}), EXPERIMENTAL_COOPERATIVE_MATRIX {}",
            yes(f.contains(Features::SHADER_F16)),
            subgroup,
            yes(f.contains(Features::TIMESTAMP_QUERY)),
            yes(f.contains(Features::TIMESTAMP_QUERY_INSIDE_PASSES)),
            coop
        );
    }
    Ok(())
}
