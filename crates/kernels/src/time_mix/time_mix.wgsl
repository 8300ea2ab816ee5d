// RWKV-7 time-mix core (spec §3.2 steps 4-13): per head, everything between the r/k/v/LoRA
// projections and the output projection, for T >= 1 tokens in order, carrying the WKV state.
//
// One workgroup of N invocations per head and state. Invocation i owns channel
// c = h·N + i and row i of the head's state S (N f32 in registers, as vec4s). Per token:
// decay, value-residual mix, normalized κ, modified k, a, b; then
//   sa_i = Σ_j S[i][j]·a_j;  S[i][j] = S[i][j]·w_j + v_i·k_j + sa_i·b_j;  y_i = Σ_j S[i][j]·r_j
// then per-head GroupNorm (EPS) with ln_x, the bonus (Σ r·k·r_k)·v, and the gate g.
//
// Two entry points:
//   time_mix       reads z, α, vgate, g from `lora` [4, T, C] (layer 0: [3, T, C] = z, α, g),
//                  in one of two row modes (the INDEPENDENT override; kernels::RowMode):
//                  Sequence (false): the T rows are consecutive tokens of one sequence with one
//                  state [H, N, N]; workgroup h runs head h over all of them in order (H workgroups);
//                  Independent (true): row t is one token of its own sequence with its own state,
//                  `state` [T, H, N, N]; workgroup g = t·H + h runs head h of row t alone, exactly
//                  as a Sequence call of that one token would (H·T workgroups);
//   time_mix_lora  computes them from the LoRA stage-1 outputs `hidden` [RW·T | RA·T | RV·T | RG·T]
//                  and the stage-2 matrices stored transposed, `lora_bt` (w2ᵀ [RW, C], a2ᵀ [RA, C],
//                  v2ᵀ [RV, C], g2ᵀ [RG, C]), with LORA_WG = SPLIT·N invocations per head: all of them
//                  share the stage-2 products (coalesced vec4 reads along C), the first N run the
//                  state update.
// Multi-token inputs are segment-major, as the projections write them: `rkv` is [3, T, C]
// (r, k, v blocks), each LoRA block holds its T rows contiguously.
// `params` rows (ParamRow in mod.rs): k_k, k_a, r_k, ln_x weight, ln_x bias, w0, a0, v0.
// A head's state [N, N] is "slot" h of `state` (Sequence, time_mix_lora) or slot t·H + h
// (Independent).

override H: u32;                    // heads = workgroups
override N: u32 = 64u;              // head size: multiple of 4, at most 4·MAX_NQ
override FIRST_LAYER: bool = false; // layer 0 writes v_first, the others read it
override INDEPENDENT: bool = false; // time_mix only: rows of independent sequences
override EPS: f32;                 // GroupNorm epsilon (GROUP_NORM_EPS in mod.rs)
override RANK_W: u32 = 32u;         // LoRA ranks (time_mix_lora only), multiples of 4
override RANK_A: u32 = 32u;
override RANK_V: u32 = 32u;
override RANK_G: u32 = 32u;
override NQ: u32 = N / 4u;
override HIDDEN_Q: u32 = (RANK_W + RANK_A + RANK_V + RANK_G) / 4u;
// time_mix_lora: invocations per head, a multiple of N (SPLIT·N).
override LORA_WG: u32 = 256u;
// time_mix_lora: vec4s of stage-2 partial sums, 4 LoRAs x LORA_WG.
override PART_Q: u32 = 4u * LORA_WG;

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
@group(0) @binding(8) var<storage, read> lora_bt: array<vec4<f32>>;

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
// time_mix_lora: partial stage-2 sums [LoRA][row group][channel quad].
var<workgroup> sh_part: array<vec4<f32>, PART_Q>;

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

// The per-channel parameters of channel c (`fused`: also w0, a0, v0), loaded together so that
// their latencies overlap instead of following the barriers that separate their uses.
struct ChannelParams {
    k_k: f32,
    k_a: f32,
    r_k: f32,
    lnx_w: f32,
    lnx_b: f32,
    w0: f32,
    a0: f32,
    v0: f32,
}

fn channel_params(c: u32, fused: bool) -> ChannelParams {
    var p = ChannelParams(param(0u, c), param(1u, c), param(2u, c), param(3u, c), param(4u, c), 0.0, 0.0, 0.0);
    if (fused) {
        p.w0 = param(5u, c);
        p.a0 = param(6u, c);
        if (!FIRST_LAYER) {
            p.v0 = param(7u, c);
        }
    }
    return p;
}

// Row i of the head state in `slot` (see the top of the file).
fn load_state(slot: u32, i: u32) {
    let base = (slot * N + i) * NQ;
    for (var q = 0u; q < NQ; q++) {
        s[q] = state[base + q];
    }
}

fn store_state(slot: u32, i: u32) {
    let base = (slot * N + i) * NQ;
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

// One token for channel c = h·N + i (three workgroup barriers; every invocation of the
// workgroup calls it in uniform control flow, those with `owns_row` false only for the barriers).
fn mix_token(t: u32, h: u32, i: u32, l: Lora, x: Inputs, p: ChannelParams, owns_row: bool) {
    let C = H * N;
    let c = h * N + i;
    let q = i >> 2u;
    let e = i & 3u;
    var v = 0.0;
    var kappa = 0.0;
    if (owns_row) {
        let r = x.r;
        let k_raw = x.k;
        v = x.v;
        if (FIRST_LAYER) {
            v_first[t * C + c] = v;
        } else {
            v = v + (x.v_first - v) * l.vgate;
        }
        kappa = k_raw * p.k_k;
        let k = k_raw * (1.0 + (l.alpha - 1.0) * p.k_a);
        sh_r[q][e] = r;
        sh_w[q][e] = rwkv7_decay(l.z);
        sh_k[q][e] = k;
        sh_kappa_sq[q][e] = kappa * kappa;
        sh_bonus[q][e] = r * k * p.r_k;
    }
    workgroupBarrier();

    var bonus = vec4<f32>(0.0);
    if (owns_row) {
        var kappa_sq = vec4<f32>(0.0);
        for (var j = 0u; j < NQ; j++) {
            kappa_sq += sh_kappa_sq[j];
            bonus += sh_bonus[j];
        }
        let kappa_hat = kappa / max(sqrt(hsum(kappa_sq)), L2_EPS);
        sh_a[q][e] = -kappa_hat;
        sh_b[q][e] = kappa_hat * l.alpha;
    }
    workgroupBarrier();

    var y_i = 0.0;
    if (owns_row) {
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
        y_i = hsum(y);
        sh_y[q][e] = y_i;
    }
    workgroupBarrier();

    if (owns_row) {
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
        let o = (y_i - mean) * inv * p.lnx_w + p.lnx_b + hsum(bonus) * v;
        out[t * C + c] = o * l.g;
    }
}

// The finished LoRA outputs of token t for channel c (entry time_mix).
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

@compute @workgroup_size(N)
fn time_mix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) i: u32) {
    // The workgroup's state slot g: head h of the one sequence (Sequence), or head h of row
    // t = g / H, which runs alone (Independent).
    let g = flat_workgroup(wid, nwg);
    let T = dims.tokens;
    if (g >= select(H, H * T, INDEPENDENT)) {
        return;
    }
    let h = g % H;
    let t_begin = select(0u, g / H, INDEPENDENT);
    let t_end = select(T, t_begin + 1u, INDEPENDENT);
    let c = h * N + i;
    load_state(g, i);
    let p = channel_params(c, false);
    // Each token's inputs are loaded one token ahead, so that their latency overlaps the
    // previous token's sequential work.
    var l = token_lora(t_begin, c);
    var x = token_inputs(t_begin, c);
    for (var t = t_begin; t < t_end; t++) {
        let next = min(t + 1u, t_end - 1u);
        let l_next = token_lora(next, c);
        let x_next = token_inputs(next, c);
        mix_token(t, h, i, l, x, p, true);
        l = l_next;
        x = x_next;
    }
    store_state(g, i);
}

// ---- time_mix_lora: the LoRA stage-2 products ------------------------------------------------
// The stage-2 rows of all four LoRAs form one flat range f in [0, LORA_ROWS) (w2ᵀ rows, then a2ᵀ,
// v2ᵀ, g2ᵀ: the order of `hidden` and `lora_bt`). Invocation (group, quad) takes rows
// f = group + u·groups, u = 0, 1, ..., for its channel quad, LORA_BATCH rows at a time: all of a
// batch's loads are issued before any is used (the first batch's before the barrier that waits
// for the stage-1 outputs), so the products cost one memory latency per batch, not one per row.
const LORA_BATCH: u32 = 16u;
override LORA_ROWS: u32 = RANK_W + RANK_A + RANK_V + RANK_G;

var<private> lora_rows: array<vec4<f32>, LORA_BATCH>;

// Loads this invocation's rows u0 .. u0 + LORA_BATCH - 1 of `lora_bt` (zero past the end).
fn load_lora_batch(u0: u32, group: u32, groups: u32, col_q: u32) {
    let cq = H * N / 4u;
    for (var u = 0u; u < LORA_BATCH; u++) {
        let f = group + (u0 + u) * groups;
        if (f < LORA_ROWS) {
            lora_rows[u] = lora_bt[f * cq + col_q];
        } else {
            lora_rows[u] = vec4<f32>(0.0);
        }
    }
}

// Per-LoRA partial sums of one invocation (one channel quad each).
struct LoraParts {
    w: vec4<f32>,
    a: vec4<f32>,
    v: vec4<f32>,
    g: vec4<f32>,
}

// Adds the loaded batch (rows u0 ..) times the stage-1 outputs to `parts`.
fn add_lora_batch(u0: u32, group: u32, groups: u32, parts: LoraParts) -> LoraParts {
    var out = parts;
    let zero = vec4<f32>(0.0);
    for (var u = 0u; u < LORA_BATCH; u++) {
        let f = min(group + (u0 + u) * groups, LORA_ROWS - 1u);
        let p = lora_rows[u] * sh_hidden[f / 4u][f % 4u];
        out.w += select(zero, p, f < RANK_W);
        out.a += select(zero, p, f >= RANK_W && f < RANK_W + RANK_A);
        out.v += select(zero, p, f >= RANK_W + RANK_A && f < RANK_W + RANK_A + RANK_V);
        out.g += select(zero, p, f >= RANK_W + RANK_A + RANK_V);
    }
    return out;
}

// The sum over the row groups of LoRA m's partials for channel i of the head.
fn lora_sum(m: u32, i: u32, groups: u32) -> f32 {
    var total = 0.0;
    for (var g = 0u; g < groups; g++) {
        total += sh_part[(m * groups + g) * NQ + i / 4u][i % 4u];
    }
    return total;
}

// Copies token t's stage-1 outputs into sh_hidden. Segment s of token t sits at
// (first rank of s)·T + t·rank_s in `hidden`.
fn stage_hidden(t: u32, lid: u32) {
    let T = dims.tokens;
    let wq = RANK_W / 4u;
    let aq = RANK_A / 4u;
    let vq = RANK_V / 4u;
    let gq = RANK_G / 4u;
    for (var j = lid; j < HIDDEN_Q; j += LORA_WG) {
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
}

@compute @workgroup_size(LORA_WG)
fn time_mix_lora(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let h = flat_workgroup(wid, nwg);
    if (h >= H) {
        return; // a whole spare workgroup of a 2-D grid (uniform)
    }
    let owns_row = lid < N;
    let i = min(lid, N - 1u);
    let c = h * N + i;
    // Stage-2 geometry: LORA_WG / NQ row groups, each covering the head's NQ channel quads.
    let quad = lid % NQ;
    let group = lid / NQ;
    let groups = LORA_WG / NQ;
    let col_q = h * NQ + quad;
    let batches = (LORA_ROWS + groups - 1u) / groups;
    let p = channel_params(c, true);
    let T = dims.tokens;
    for (var t = 0u; t < T; t++) {
        // Every global load of the token is issued here, before the first barrier. The previous
        // token's barriers ordered every read of sh_hidden and sh_part before these writes.
        stage_hidden(t, lid);
        load_lora_batch(0u, group, groups, col_q);
        var x = Inputs(0.0, 0.0, 0.0, 0.0);
        if (owns_row) {
            x = token_inputs(t, c);
        }
        workgroupBarrier();
        var parts = add_lora_batch(0u, group, groups, LoraParts(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0)));
        for (var u0 = LORA_BATCH; u0 < batches; u0 += LORA_BATCH) {
            load_lora_batch(u0, group, groups, col_q);
            parts = add_lora_batch(u0, group, groups, parts);
        }
        sh_part[group * NQ + quad] = parts.w;
        sh_part[(groups + group) * NQ + quad] = parts.a;
        sh_part[(2u * groups + group) * NQ + quad] = parts.v;
        sh_part[(3u * groups + group) * NQ + quad] = parts.g;
        // The state row is loaded per token (its registers are free during the products);
        // its latency overlaps the barrier and the partial sums.
        if (owns_row) {
            load_state(h, i);
        }
        workgroupBarrier();
        var l: Lora;
        if (owns_row) {
            l.z = p.w0 + lora_sum(0u, i, groups);
            l.alpha = sigmoid(p.a0 + lora_sum(1u, i, groups));
            if (FIRST_LAYER) {
                l.vgate = 0.0;
            } else {
                l.vgate = sigmoid(p.v0 + lora_sum(2u, i, groups));
            }
            l.g = lora_sum(3u, i, groups);
        }
        mix_token(t, h, i, l, x, p, owns_row);
        if (owns_row) {
            store_state(h, i);
        }
    }
}
