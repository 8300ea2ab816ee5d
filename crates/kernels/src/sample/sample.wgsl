// GPU sampling of one token from each of R rows of V logits (R independent sequences), with
// ChatRWKV's semantics (PIPELINE). For row r, with its own settings params[r]:
//   1. penalties: l[t] = logit[t] - (presence + count[t] * frequency) for every token seen so far;
//      banned tokens (params.banned, at most MAX_BANNED) are out: l[t] = -infinity;
//   2. e[t] = exp(l[t] - max l) (softmax without the division: every later step is invariant
//      to the scale); 0 for banned tokens, which therefore never get a positive weight;
//   3. top-p: cutoff_p = the largest e such that the sum of all e >= it is >= top_p * sum(e)
//      (= the sorted probability at the first index where the cumulative sum reaches top_p);
//      skipped when top_p >= 1;
//   4. top-k (0 < k < V): cutoff_k = the k-th largest e (ties at the cut are kept);
//   5. w[t] = e[t]^(1/temperature) if e[t] > 0 and e[t] >= max(cutoff_p, cutoff_k), else 0 (no power when
//      temperature == 1); temperature 0 means temperature 1 with top_p 0 (greedy, ties kept);
//   6. draw: r = u * sum(w) with u uniform in [0, 1) from a counter-based hash of
//      (seed, step); the token is the first index (in index order) whose cumulative w exceeds r;
//   7. counts *= decay, count[token] += 1, token marked seen; out_token[r] = token, step += 1.
// The cutoffs are found without sorting: a binary search over the bit patterns of positive
// f32 (ordered like the values) with one workgroup reduction per step.
//
// One workgroup (WG invocations, a power of two) per row; the row count R is the exactly bound
// `out_token`'s length. Workgroup r reads and writes only its row's share of each buffer:
// logits, counts, scratch [R, V]; seen [R, W] (W = ceil(V / 32) words); state [R, STATE_WORDS];
// params [R]; out_token [R].

struct Params {
    temperature: f32,
    top_p: f32,
    top_k: u32,
    presence_penalty: f32,
    frequency_penalty: f32,
    penalty_decay: f32,
    banned_count: u32,
    pad: u32,
    // The banned token ids; only the first banned_count are used.
    banned: array<u32, MAX_BANNED>,
}

override V: u32;
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> counts: array<f32>;
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<u32>;
@group(0) @binding(5) var<storage, read_write> out_token: array<u32>;
@group(0) @binding(6) var<storage, read> params: array<Params>;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> chosen: u32;

// This workgroup's row's settings.
var<private> prm: Params;

const NONE: u32 = 0xffffffffu;
const MAX_BANNED: u32 = 16u;
const STATE_WORDS: u32 = 3u;       // per row: seed (low, high word), step counter
const ONE_BITS: u32 = 0x3f800000u; // 1.0, the largest e
const SEARCH_STEPS: u32 = 30u;     // 2^30 > ONE_BITS + 1: the search interval shrinks to one

fn reduce_max(lid: u32, v: f32) -> f32 {
    red_f[lid] = v;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            red_f[lid] = max(red_f[lid], red_f[lid + step]);
        }
        workgroupBarrier();
    }
    let total = red_f[0];
    workgroupBarrier();
    return total;
}

struct SumCount {
    sum: f32,
    count: u32,
}

fn reduce_sum_count(lid: u32, s: f32, n: u32) -> SumCount {
    red_f[lid] = s;
    red_u[lid] = n;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            red_f[lid] += red_f[lid + step];
            red_u[lid] += red_u[lid + step];
        }
        workgroupBarrier();
    }
    let total = SumCount(red_f[0], red_u[0]);
    workgroupBarrier();
    return total;
}

// lowbias32 (Chris Wellons): a 32-bit integer hash.
fn hash32(x: u32) -> u32 {
    var h = x;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

// Uniform in [0, 1) with 24 bits, from (seed, step); mirrored by the Rust reference.
fn draw_uniform(seed_lo: u32, seed_hi: u32, step: u32) -> f32 {
    let h = hash32(step ^ hash32(seed_lo ^ hash32(seed_hi ^ 0x9e3779b9u)));
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

fn is_banned(token: u32) -> bool {
    let n = min(prm.banned_count, MAX_BANNED);
    for (var j = 0u; j < n; j++) {
        if (prm.banned[j] == token) {
            return true;
        }
    }
    return false;
}

fn weight(e: f32, cutoff: f32, use_pow: bool, inv_t: f32) -> f32 {
    if (e <= 0.0 || e < cutoff) {
        return 0.0;
    }
    return select(e, pow(e, inv_t), use_pow);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wid, nwg);
    if (row >= arrayLength(&out_token)) {
        return;
    }
    // Row r's share of each buffer starts at these indices.
    let lo = row * V;
    let seen_lo = row * ((V + 31u) / 32u);
    let state_lo = row * STATE_WORDS;
    prm = params[row];
    if (lid == 0u) {
        chosen = NONE;
    }
    var temperature = prm.temperature;
    var top_p = prm.top_p;
    if (temperature == 0.0) {
        temperature = 1.0;
        top_p = 0.0;
    }
    let k = prm.top_k;

    // 1-2. Penalised logits, their maximum over the tokens not banned, e = exp(l - max) (0 if
    // banned) and its sum.
    var m = -3.40282347e38;
    for (var i = lid; i < V; i += WG) {
        var l = logits[lo + i];
        if (((seen[seen_lo + i / 32u] >> (i % 32u)) & 1u) != 0u) {
            l -= prm.presence_penalty + counts[lo + i] * prm.frequency_penalty;
        }
        scratch[lo + i] = l;
        if (!is_banned(i)) {
            m = max(m, l);
        }
    }
    m = reduce_max(lid, m);
    var s = 0.0;
    for (var i = lid; i < V; i += WG) {
        let e = select(exp(scratch[lo + i] - m), 0.0, is_banned(i));
        scratch[lo + i] = e;
        s += e;
    }
    let total = reduce_sum_count(lid, s, 0u).sum;

    // 3-4. Both cutoffs by binary search on bit patterns: lo always satisfies the condition,
    // hi never does.
    let use_p = top_p < 1.0;
    let use_k = k > 0u && k < V;
    let mass = top_p * total;
    var lo_p = 0u;
    var hi_p = ONE_BITS + 1u;
    var lo_k = 0u;
    var hi_k = ONE_BITS + 1u;
    if (use_p || use_k) {
        for (var it = 0u; it < SEARCH_STEPS; it++) {
            let mid_p = lo_p + (hi_p - lo_p) / 2u;
            let mid_k = lo_k + (hi_k - lo_k) / 2u;
            let tp = bitcast<f32>(mid_p);
            let tk = bitcast<f32>(mid_k);
            var sp = 0.0;
            var ck = 0u;
            for (var i = lid; i < V; i += WG) {
                let e = scratch[lo + i];
                sp += select(0.0, e, e >= tp);
                ck += select(0u, 1u, e >= tk);
            }
            let r = reduce_sum_count(lid, sp, ck);
            if (r.sum >= mass) {
                lo_p = mid_p;
            } else {
                hi_p = mid_p;
            }
            if (r.count >= k) {
                lo_k = mid_k;
            } else {
                hi_k = mid_k;
            }
        }
    }
    let cutoff = max(select(0.0, bitcast<f32>(lo_p), use_p), select(0.0, bitcast<f32>(lo_k), use_k));
    let use_pow = temperature != 1.0;
    let inv_t = 1.0 / temperature;

    // 6. Inverse CDF in index order: each invocation owns a contiguous chunk; an inclusive scan
    // of the chunk sums finds the one chunk whose interval holds r.
    storageBarrier(); // scratch was written in strided order; chunks read it contiguously
    let chunk = (V + WG - 1u) / WG;
    let start = min(lid * chunk, V);
    let end = min(start + chunk, V);
    var ws = 0.0;
    for (var i = start; i < end; i++) {
        ws += weight(scratch[lo + i], cutoff, use_pow, inv_t);
    }
    red_f[lid] = ws;
    workgroupBarrier();
    for (var off = 1u; off < WG; off <<= 1u) {
        var add = 0.0;
        if (lid >= off) {
            add = red_f[lid - off];
        }
        workgroupBarrier();
        red_f[lid] += add;
        workgroupBarrier();
    }
    let incl = red_f[lid];
    var excl = 0.0;
    if (lid > 0u) {
        excl = red_f[lid - 1u];
    }
    let wtotal = red_f[WG - 1u];
    let seed_lo = state[state_lo];
    let seed_hi = state[state_lo + 1u];
    let step = state[state_lo + 2u];
    var r = draw_uniform(seed_lo, seed_hi, step) * wtotal;
    if (r >= wtotal) {
        r = bitcast<f32>(bitcast<u32>(wtotal) - 1u); // u * total rounded up to total
    }
    if (r >= excl && r < incl) {
        var acc = excl;
        var tok = NONE;
        for (var i = start; i < end; i++) {
            let w = weight(scratch[lo + i], cutoff, use_pow, inv_t);
            if (w > 0.0) {
                tok = i;
                acc += w;
                if (r < acc) {
                    break;
                }
            }
        }
        chosen = tok;
    }
    workgroupBarrier();
    let tok = chosen;

    // 7. Bookkeeping.
    storageBarrier(); // every read of counts, seen and state is done
    for (var i = lid; i < V; i += WG) {
        counts[lo + i] = counts[lo + i] * prm.penalty_decay + select(0.0, 1.0, i == tok);
    }
    if (lid == 0u) {
        if (tok < V) {
            seen[seen_lo + tok / 32u] |= 1u << (tok % 32u);
        }
        out_token[row] = tok;
        state[state_lo + 2u] = step + 1u;
    }
}
