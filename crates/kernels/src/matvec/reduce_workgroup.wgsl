// The final reductions of matvec.wgsl through workgroup memory (`partial`), for adapters
// without subgroups.

// The sum of the TPR partial sums of each row, valid in the row's lane 0. Call from uniform
// control flow: the partial sums meet in workgroup memory.
fn row_sum(lid: u32, lane: u32, acc: f32) -> f32 {
    partial[lid] = acc;
    workgroupBarrier();
    for (var step = TPR / 2u; step > 0u; step >>= 1u) {
        if (lane < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    return partial[lid];
}

// Workgroup sum of one value per invocation, returned to every invocation (uniform control flow).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
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
