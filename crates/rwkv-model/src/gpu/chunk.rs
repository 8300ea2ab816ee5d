//! How many tokens one prefill chunk holds: the scratch capacity chosen at load from the adapter
//! and the model's widths, and the length of each chunk of a given prompt.

use gpu_core::wgpu::DeviceType;
use gpu_core::Capabilities;

use crate::HParams;

/// Chunk capacity aimed at on a discrete GPU: large enough that the prefill matmuls fill the
/// GPU with 128-token tiles, small enough that the scratch stays a few hundred MiB.
const DISCRETE_TOKENS: usize = 1024;
/// On integrated, virtual or unknown GPUs.
const OTHER_GPU_TOKENS: usize = 256;
/// On a CPU adapter (software Vulkan): the matmul's 16- and 64-token tiles are already full.
const CPU_TOKENS: usize = 64;
/// Scratch bytes allowed for activations on a discrete GPU, and elsewhere.
const DISCRETE_SCRATCH_BYTES: u64 = 1 << 30;
const OTHER_SCRATCH_BYTES: u64 = 256 << 20;
/// Chunks are whole multiples of this many tokens when they can be (the smallest matmul tile).
const GRANULE: usize = 16;

/// f32 values of scratch per token (see scratch.rs): tokens, x, xa, xs (6), rkv (3), hidden,
/// lora (4), v_first, att, ffn.
pub(crate) fn scratch_floats_per_token(hp: &HParams) -> u64 {
    1 + 17 * hp.n_embd as u64 + (hp.d_w + hp.d_a + hp.d_v + hp.d_g) as u64 + hp.ffn as u64
}

/// The most tokens one chunk holds on this adapter. Automatic (`allowed` = `None`): the device
/// type's target, capped by a scratch memory budget. `Some(n)`: n tokens. Either way capped by
/// the largest single binding (xs [6, T, C], lora [4, T, C] and ffn [T, F] are bound whole).
pub fn chunk_capacity(caps: &Capabilities, hp: &HParams, allowed: Option<usize>) -> usize {
    let (target, budget) = match caps.device_type {
        DeviceType::DiscreteGpu => (DISCRETE_TOKENS, DISCRETE_SCRATCH_BYTES),
        DeviceType::Cpu => (CPU_TOKENS, OTHER_SCRATCH_BYTES),
        _ => (OTHER_GPU_TOKENS, OTHER_SCRATCH_BYTES),
    };
    let binding = caps.limits.max_storage_buffer_binding_size.min(caps.limits.max_buffer_size);
    let widest = (6 * hp.n_embd).max(hp.ffn).max(1) as u64 * 4;
    let by_binding = (binding / widest).saturating_sub(1);
    let by_budget = budget / (scratch_floats_per_token(hp) * 4);
    let cap = match allowed {
        Some(a) => (a as u64).min(by_binding) as usize,
        None => {
            let auto = (target as u64).min(by_binding).min(by_budget) as usize;
            if auto >= GRANULE {
                auto - auto % GRANULE
            } else {
                auto
            }
        }
    };
    cap.max(1)
}

/// The length of the next chunk of a prompt of `remaining` tokens with chunks of at most
/// `capacity`: the prompt is split into as few chunks as fit, of nearly equal lengths (rounded
/// up to a multiple of 16 tokens where the capacity allows), so no chunk is needlessly short.
pub fn chunk_len(remaining: usize, capacity: usize) -> usize {
    let capacity = capacity.max(1);
    if remaining <= capacity {
        return remaining;
    }
    let chunks = remaining.div_ceil(capacity);
    let even = remaining.div_ceil(chunks);
    if capacity >= GRANULE {
        even.next_multiple_of(GRANULE).min(capacity)
    } else {
        even
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_prompt_evenly() {
        for capacity in [1, 5, 16, 64, 100, 1024] {
            for n in [1, 2, 15, 16, 17, 63, 64, 65, 600, 1000, 1025, 2049, 5000] {
                let mut lens = Vec::new();
                let mut left = n;
                while left > 0 {
                    let l = chunk_len(left, capacity);
                    assert!(l >= 1 && l <= capacity, "capacity {capacity}, n {n}: {l}");
                    lens.push(l);
                    left -= l;
                }
                assert_eq!(lens.len(), n.div_ceil(capacity), "capacity {capacity}, n {n}: {lens:?}");
            }
        }
        assert_eq!(chunk_len(1500, 1024), 752);
        assert_eq!(chunk_len(748, 1024), 748);
        assert_eq!(chunk_len(8, 3), 3);
        assert_eq!(chunk_len(5, 3), 3);
        assert_eq!(chunk_len(20, 8), 7);
    }
}
