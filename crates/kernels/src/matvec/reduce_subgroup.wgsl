// The final reductions of matvec.wgsl with subgroup shuffles: a row's TPR lanes (TPR <= the
// adapter's smallest subgroup size; rows occupy aligned runs of TPR lanes) add by
// subgroupShuffleXor, without workgroup memory or barriers in `main`.

// The sum of the TPR partial sums of each row, in every lane of the row: a butterfly over the
// row's TPR lanes (every lane of the subgroup takes part; call from uniform control flow).
fn row_sum(lid: u32, lane: u32, acc: f32) -> f32 {
    var total = acc;
    for (var off = TPR / 2u; off > 0u; off >>= 1u) {
        total += subgroupShuffleXor(total, off);
    }
    return total;
}

// Workgroup sum of one value per invocation, returned to every invocation (uniform control
// flow): each run of TPR lanes sums with row_sum, the WG / TPR run sums meet in workgroup
// memory and every invocation adds them in the same order (two barriers, not one per halving).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    let run = row_sum(lid, lid % TPR, v);
    if (lid % TPR == 0u) {
        partial[lid / TPR] = run;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < WG / TPR; i++) {
        total += partial[i];
    }
    workgroupBarrier();
    return total;
}
