// LayerNorm fused with the token shift. For each row t of the raw residual x [T, C]:
//   xa[t] = LN(x[t]; weight, bias)
//   y[j][t] = xa[t] + (prev - xa[t]) * mu[j]
// Two row modes (the INDEPENDENT override; kernels::RowMode):
//   Sequence (false): the rows are consecutive tokens of one sequence with one state [C]:
//     prev = shift_state for t = 0, else xa[t - 1]; afterwards shift_state = xa[T - 1].
//   Independent (true): row t is its own sequence with its own state row t of [T, C]:
//     prev = shift_state[t]; afterwards shift_state[t] = xa[t].
// One workgroup per row t; each normalises its own row and the one whose LN it needs besides
// (the "other" row): t - 1, or T - 1 for workgroup 0 (which writes it to the state), in
// Sequence mode; row t itself in Independent mode (the same arithmetic, so the state receives
// exactly xa[t]). Rows: arrayLength(x) / C.
//
// Race rule: in Sequence mode only workgroup 0 touches shift_state; in Independent mode each
// workgroup touches only its own state row. Each invocation reads the state of its own
// channels before overwriting them.

override C: u32;
override NMIX: u32 = 1u;
override EPS: f32 = 1e-5;
override WG: u32 = 256u; // a power of two
override INDEPENDENT: bool = false;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> mu: array<f32>;
@group(0) @binding(4) var<storage, read_write> shift_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<vec2<f32>, WG>;

// Workgroup sum of one vec2 per invocation (call from uniform control flow).
fn workgroup_sum_pair(lid: u32, v: vec2<f32>) -> vec2<f32> {
    partial[lid] = v;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_workgroup(wid, nwg);
    let rows = arrayLength(&x) / C;
    if (t >= rows) {
        return;
    }
    let other = select(select(rows - 1u, t - 1u, t > 0u), t, INDEPENDENT);
    let bt = t * C;
    let bo = other * C;
    // Whether this row reads and writes the state, and where its state row starts.
    let stateful = INDEPENDENT || t == 0u;
    let bs = select(0u, bt, INDEPENDENT);
    // Two-pass statistics of both rows at once (x = row t, y = the other row).
    var s = vec2<f32>(0.0);
    for (var i = lid; i < C; i += WG) {
        s += vec2<f32>(x[bt + i], x[bo + i]);
    }
    let mean = workgroup_sum_pair(lid, s) / f32(C);
    var q = vec2<f32>(0.0);
    for (var i = lid; i < C; i += WG) {
        let d = vec2<f32>(x[bt + i], x[bo + i]) - mean;
        q += d * d;
    }
    let inv = inverseSqrt(workgroup_sum_pair(lid, q) / f32(C) + EPS);
    for (var i = lid; i < C; i += WG) {
        let w = weight[i];
        let b = bias[i];
        let cur = (x[bt + i] - mean.x) * inv.x * w + b;
        let oth = (x[bo + i] - mean.y) * inv.y * w + b;
        var prev = oth;
        if (stateful) {
            prev = shift_state[bs + i];
            shift_state[bs + i] = oth;
        }
        let d = prev - cur;
        for (var j = 0u; j < NMIX; j++) {
            y[(j * rows + t) * C + i] = cur + d * mu[j * C + i];
        }
    }
}
