// Word copy: dst[DST_SKIP + i] = src[SRC_SKIP + i] for i < arrayLength(dst) - DST_SKIP. The
// launcher binds both buffers from an aligned offset at or below the requested word, and the
// skips (under 64 words) make up the difference. One invocation per word.

override SRC_SKIP: u32 = 0u;
override DST_SKIP: u32 = 0u;
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_workgroup(wid, nwg) * WG + lid;
    if (i < arrayLength(&dst) - DST_SKIP) {
        dst[DST_SKIP + i] = src[SRC_SKIP + i];
    }
}
