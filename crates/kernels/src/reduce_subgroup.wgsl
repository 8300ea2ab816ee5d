// The reductions of reduce.wgsl with subgroup shuffles, for modules that enable subgroups: a row's
// `tpr` lanes (`tpr` <= the adapter's smallest subgroup size; rows occupy aligned runs of `tpr`
// lanes) add by subgroupShuffleXor, without workgroup memory or barriers. The including module
// declares `var<workgroup> partial: array<f32, N>` (N at least wg / tpr) and the override TPR.

// The sum of the `tpr` partial sums of each row, in every lane of the row: a butterfly over the
// row's `tpr` lanes (every lane of the subgroup takes part; call from uniform control flow).
fn row_sum(lid: u32, lane: u32, acc: f32, tpr: u32) -> f32 {
    var total = acc;
    for (var off = tpr / 2u; off > 0u; off >>= 1u) {
        total += subgroupShuffleXor(total, off);
    }
    return total;
}

// Workgroup sum of one value per invocation, returned to every invocation (uniform control
// flow): each run of TPR lanes sums with row_sum, the wg / TPR run sums meet in workgroup
// memory and every invocation adds them in the same order (two barriers, not one per halving).
fn workgroup_sum(lid: u32, v: f32, wg: u32) -> f32 {
    let run = row_sum(lid, lid % TPR, v, TPR);
    if (lid % TPR == 0u) {
        partial[lid / TPR] = run;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < wg / TPR; i++) {
        total += partial[i];
    }
    workgroupBarrier();
    return total;
}
