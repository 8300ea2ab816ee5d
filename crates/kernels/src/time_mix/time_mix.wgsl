// RWKV-7 time-mix core (spec §3.2 steps 4-13): per head, everything between the r/k/v/LoRA
// projections and the output projection, for T >= 1 tokens in order, carrying the WKV state.
//
// One workgroup of N invocations per head (H workgroups). Invocation i owns channel
// c = h·N + i and row i of the head's state S (N f32 in registers, as vec4s). Per token:
// decay, value-residual mix, normalized κ, modified k, a, b; then
//   sa_i = Σ_j S[i][j]·a_j;  S[i][j] = S[i][j]·w_j + v_i·k_j + sa_i·b_j;  y_i = Σ_j S[i][j]·r_j
// then per-head GroupNorm (EPS) with ln_x, the bonus (Σ r·k·r_k)·v, and the gate g.
//
// Two entry points:
//   time_mix       reads z, α, vgate, g from `lora` [4, T, C] (layer 0: [3, T, C] = z, α, g);
//   time_mix_lora  computes them from the LoRA stage-1 outputs `hidden` [RW·T | RA·T | RV·T | RG·T]
//                  and the stage-2 matrices `lora_b` (w2 [C, RW], a2 [C, RA], v2 [C, RV], g2 [C, RG]).
// Multi-token inputs are segment-major, as the projections write them: `rkv` is [3, T, C]
// (r, k, v blocks), each LoRA block holds its T rows contiguously.
// `params` rows (ParamRow in mod.rs): k_k, k_a, r_k, ln_x weight, ln_x bias, w0, a0, v0.

override H: u32;                    // heads = workgroups
override N: u32 = 64u;              // head size: multiple of 4, at most 4·MAX_NQ
override FIRST_LAYER: bool = false; // layer 0 writes v_first, the others read it
override EPS: f32 = 64e-5;          // GroupNorm epsilon
override RANK_W: u32 = 32u;         // LoRA ranks (time_mix_lora only), multiples of 4
override RANK_A: u32 = 32u;
override RANK_V: u32 = 32u;
override RANK_G: u32 = 32u;
override NQ: u32 = N / 4u;
override HIDDEN_Q: u32 = (RANK_W + RANK_A + RANK_V + RANK_G) / 4u;

const MAX_NQ: u32 = 16u;
const L2_EPS: f32 = 1e-12;

struct Dims {
    tokens: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> rkv: array<f32>;
@group(0) @binding(1) var<storage, read> lora: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_first: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> dims: Dims;
@group(0) @binding(7) var<storage, read> hidden: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> lora_b: array<vec4<f32>>;

var<private> s: array<vec4<f32>, MAX_NQ>;

// Per-token vectors of the head, shared by all rows (element i at [i / 4][i % 4]).
var<workgroup> sh_r: array<vec4<f32>, NQ>;
var<workgroup> sh_w: array<vec4<f32>, NQ>;
var<workgroup> sh_k: array<vec4<f32>, NQ>;
var<workgroup> sh_a: array<vec4<f32>, NQ>;
var<workgroup> sh_b: array<vec4<f32>, NQ>;
var<workgroup> sh_y: array<vec4<f32>, NQ>;
var<workgroup> sh_kappa_sq: array<vec4<f32>, NQ>;
var<workgroup> sh_bonus: array<vec4<f32>, NQ>;
// time_mix_lora: one token's LoRA stage-1 outputs.
var<workgroup> sh_hidden: array<vec4<f32>, HIDDEN_Q>;

// The per-channel LoRA results of one token.
struct Lora {
    z: f32,
    alpha: f32,
    vgate: f32,
    g: f32,
}

fn param(row: u32, c: u32) -> f32 {
    return params[row * H * N + c];
}

fn load_state(h: u32, i: u32) {
    let base = (h * N + i) * NQ;
    for (var q = 0u; q < NQ; q++) {
        s[q] = state[base + q];
    }
}

fn store_state(h: u32, i: u32) {
    let base = (h * N + i) * NQ;
    for (var q = 0u; q < NQ; q++) {
        state[base + q] = s[q];
    }
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// The projections' outputs of one token for channel c (layer 0: v_first is not read).
struct Inputs {
    r: f32,
    k: f32,
    v: f32,
    v_first: f32,
}

fn token_inputs(t: u32, c: u32) -> Inputs {
    let C = H * N;
    let T = dims.tokens;
    var x = Inputs(rkv[t * C + c], rkv[(T + t) * C + c], rkv[(2u * T + t) * C + c], 0.0);
    if (!FIRST_LAYER) {
        x.v_first = v_first[t * C + c];
    }
    return x;
}

// One token for channel c = h·N + i (three workgroup barriers; call in uniform control flow).
fn mix_token(t: u32, h: u32, i: u32, l: Lora, x: Inputs) {
    let C = H * N;
    let c = h * N + i;
    let q = i >> 2u;
    let e = i & 3u;
    let r = x.r;
    let k_raw = x.k;
    var v = x.v;
    if (FIRST_LAYER) {
        v_first[t * C + c] = v;
    } else {
        v = v + (x.v_first - v) * l.vgate;
    }
    let kappa = k_raw * param(0u, c);
    let k = k_raw * (1.0 + (l.alpha - 1.0) * param(1u, c));
    sh_r[q][e] = r;
    sh_w[q][e] = rwkv7_decay(l.z);
    sh_k[q][e] = k;
    sh_kappa_sq[q][e] = kappa * kappa;
    sh_bonus[q][e] = r * k * param(2u, c);
    workgroupBarrier();

    var kappa_sq = vec4<f32>(0.0);
    var bonus = vec4<f32>(0.0);
    for (var j = 0u; j < NQ; j++) {
        kappa_sq += sh_kappa_sq[j];
        bonus += sh_bonus[j];
    }
    let kappa_hat = kappa / max(sqrt(hsum(kappa_sq)), L2_EPS);
    sh_a[q][e] = -kappa_hat;
    sh_b[q][e] = kappa_hat * l.alpha;
    workgroupBarrier();

    var sa = vec4<f32>(0.0);
    for (var j = 0u; j < NQ; j++) {
        sa += s[j] * sh_a[j];
    }
    let sa_i = hsum(sa);
    var y = vec4<f32>(0.0);
    for (var j = 0u; j < NQ; j++) {
        s[j] = s[j] * sh_w[j] + v * sh_k[j] + sa_i * sh_b[j];
        y += s[j] * sh_r[j];
    }
    let y_i = hsum(y);
    sh_y[q][e] = y_i;
    workgroupBarrier();

    var total = vec4<f32>(0.0);
    for (var j = 0u; j < NQ; j++) {
        total += sh_y[j];
    }
    let mean = hsum(total) / f32(N);
    var sq = vec4<f32>(0.0);
    for (var j = 0u; j < NQ; j++) {
        let d = sh_y[j] - mean;
        sq += d * d;
    }
    let inv = inverseSqrt(hsum(sq) / f32(N) + EPS);
    let o = (y_i - mean) * inv * param(3u, c) + param(4u, c) + hsum(bonus) * v;
    out[t * C + c] = o * l.g;
}

@compute @workgroup_size(N)
fn time_mix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) i: u32) {
    let h = flat_workgroup(wid, nwg);
    if (h >= H) {
        return;
    }
    let C = H * N;
    let c = h * N + i;
    load_state(h, i);
    let T = dims.tokens;
    // Each token's inputs are loaded one token ahead, so that their latency overlaps the
    // previous token's sequential work.
    var l = token_lora(0u, c);
    var x = token_inputs(0u, c);
    for (var t = 0u; t < T; t++) {
        let next = min(t + 1u, T - 1u);
        let l_next = token_lora(next, c);
        let x_next = token_inputs(next, c);
        mix_token(t, h, i, l, x);
        l = l_next;
        x = x_next;
    }
    store_state(h, i);
}

// The LoRA outputs of token t for channel c, from `lora`.
fn token_lora(t: u32, c: u32) -> Lora {
    let C = H * N;
    let T = dims.tokens;
    // Layer 0 has no value-residual LoRA: its g block comes right after α.
    let g_block = select(3u, 2u, FIRST_LAYER);
    var vgate = 0.0;
    if (!FIRST_LAYER) {
        vgate = lora[(2u * T + t) * C + c];
    }
    return Lora(lora[t * C + c], lora[(T + t) * C + c], vgate, lora[(g_block * T + t) * C + c]);
}

// Row `row` of the packed stage-2 matrix starting at vec4 `matrix` (rank/4 vec4s per row) dotted
// with the stage-1 outputs at vec4 `first` of sh_hidden.
fn lora_dot(matrix: u32, row: u32, rank_q: u32, first: u32) -> f32 {
    var acc = vec4<f32>(0.0);
    let base = matrix + row * rank_q;
    for (var j = 0u; j < rank_q; j++) {
        acc += lora_b[base + j] * sh_hidden[first + j];
    }
    return hsum(acc);
}

@compute @workgroup_size(N)
fn time_mix_lora(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) i: u32) {
    let h = flat_workgroup(wid, nwg);
    if (h >= H) {
        return;
    }
    let C = H * N;
    let c = h * N + i;
    let wq = RANK_W / 4u;
    let aq = RANK_A / 4u;
    let vq = RANK_V / 4u;
    let gq = RANK_G / 4u;
    load_state(h, i);
    let T = dims.tokens;
    for (var t = 0u; t < T; t++) {
        // The previous token's last barrier ordered every read of sh_hidden before this write.
        // Segment s of token t sits at (first rank of s)·T + t·rank_s in `hidden`.
        for (var j = i; j < HIDDEN_Q; j += N) {
            var src: u32;
            if (j < wq) {
                src = t * wq + j;
            } else if (j < wq + aq) {
                src = wq * T + t * aq + (j - wq);
            } else if (j < wq + aq + vq) {
                src = (wq + aq) * T + t * vq + (j - wq - aq);
            } else {
                src = (wq + aq + vq) * T + t * gq + (j - wq - aq - vq);
            }
            sh_hidden[j] = hidden[src];
        }
        workgroupBarrier();
        var l: Lora;
        l.z = param(5u, c) + lora_dot(0u, c, wq, 0u);
        l.alpha = sigmoid(param(6u, c) + lora_dot(C * wq, c, aq, wq));
        if (FIRST_LAYER) {
            l.vgate = 0.0;
        } else {
            l.vgate = sigmoid(param(7u, c) + lora_dot(C * (wq + aq), c, vq, wq + aq));
        }
        l.g = lora_dot(C * (wq + aq + vq), c, gq, wq + aq + vq);
        mix_token(t, h, i, l, token_inputs(t, c));
    }
    store_state(h, i);
}
