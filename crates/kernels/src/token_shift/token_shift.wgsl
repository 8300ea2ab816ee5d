// Token shift (the RWKV-7 lerps) over rows of C values:
//   y[j][t] = xa[t] + (prev - xa[t]) * mu[j]
// for j < NMIX mixes, in one of two row modes (the INDEPENDENT override; kernels::RowMode):
//   Sequence (false): the rows are consecutive tokens of one sequence with one state [C]:
//     prev = shift_state for t = 0, else xa[t - 1]; afterwards shift_state = xa[T - 1].
//   Independent (true): row t is its own sequence with its own state row t of [T, C]:
//     prev = shift_state[t]; afterwards shift_state[t] = xa[t].
// One workgroup per row t; the row count T comes from the exactly bound `xa` (arrayLength / C).
//
// Race rule: in Sequence mode only workgroup 0 touches shift_state; in Independent mode each
// workgroup touches only its own state row. Each invocation reads the state for its own
// channels before overwriting them, so no barrier is needed, and no other workgroup reads them.

override C: u32;
override NMIX: u32 = 1u;
override WG: u32 = 256u;
override INDEPENDENT: bool = false;

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
    // Whether this row reads and writes the state, where its state row starts, and the row
    // the state keeps afterwards.
    let stateful = INDEPENDENT || t == 0u;
    let state_base = select(0u, base, INDEPENDENT);
    let kept = select((rows - 1u) * C, base, INDEPENDENT);
    for (var i = lid; i < C; i += WG) {
        let cur = xa[base + i];
        var prev: f32;
        if (stateful) {
            prev = shift_state[state_base + i];
            shift_state[state_base + i] = xa[kept + i];
        } else {
            prev = xa[base - C + i];
        }
        let d = prev - cur;
        for (var j = 0u; j < NMIX; j++) {
            y[(j * rows + t) * C + i] = cur + d * mu[j * C + i];
        }
    }
}
