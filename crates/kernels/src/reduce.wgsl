// Reductions through workgroup memory: the including module declares
// `var<workgroup> partial: array<f32, N>` with N at least the workgroup size. reduce_subgroup.wgsl
// has the same functions with subgroup operations (for modules that enable subgroups).

// The sum of the `tpr` partial sums of each run of `tpr` invocations (a row), valid in the run's
// lane 0. Call from uniform control flow: the partial sums meet in workgroup memory.
fn row_sum(lid: u32, lane: u32, acc: f32, tpr: u32) -> f32 {
    partial[lid] = acc;
    workgroupBarrier();
    for (var step = tpr / 2u; step > 0u; step >>= 1u) {
        if (lane < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    return partial[lid];
}

// Sum of one value per invocation over a workgroup of `wg` invocations, returned to every
// invocation (uniform control flow).
fn workgroup_sum(lid: u32, v: f32, wg: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var step = wg / 2u; step > 0u; step >>= 1u) {
        if (lid < step) {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}
