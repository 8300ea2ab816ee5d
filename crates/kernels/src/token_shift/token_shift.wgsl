// Token shift (the RWKV-7 lerps) over rows of C values:
//   y[j][t] = xa[t] + (prev - xa[t]) * mu[j],   prev = shift_state for t = 0, else xa[t - 1],
// for j < NMIX mixes; afterwards shift_state = xa[T - 1]. One workgroup per row t; the row
// count T comes from the exactly bound `xa` (arrayLength / C).
//
// Race rule: only workgroup 0 touches shift_state. Each of its invocations reads the state
// for its own channels before overwriting them with row T - 1, so no barrier is needed, and no
// other workgroup reads the state.

override C: u32;
override NMIX: u32 = 1u;
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> xa: array<f32>;
@group(0) @binding(1) var<storage, read> mu: array<f32>;
@group(0) @binding(2) var<storage, read_write> shift_state: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_workgroup(wid, nwg);
    let rows = arrayLength(&xa) / C;
    if (t >= rows) {
        return;
    }
    let base = t * C;
    let last = (rows - 1u) * C;
    for (var i = lid; i < C; i += WG) {
        let cur = xa[base + i];
        var prev: f32;
        if (t == 0u) {
            prev = shift_state[i];
            shift_state[i] = xa[last + i];
        } else {
            prev = xa[base - C + i];
        }
        let d = prev - cur;
        for (var j = 0u; j < NMIX; j++) {
            y[(j * rows + t) * C + i] = cur + d * mu[j * C + i];
        }
    }
}
