#!/usr/bin/env bash
# Runs on a lent GPU machine (no Rust toolchain there): the figures the open issues ask for, from
# release binaries built here and carried as `.devpack.tar.xz` (an untracked file in the repository
# root: rwkv-cli, and the test binaries kernels-tests, gpu-golden, batch-tests; the tracked tree is
# near the 64 MiB a call may carry, so the binaries travel stripped and xz-compressed) and `.gl`
# (the Vulkan/GL loader .debs, see docs/perf.md). One part per call (each well inside ten minutes);
# results in $OUT.
#
#   scripts/device-measure.sh tests     kernel tests (tensor cores required), GPU golden, batch tests
#   scripts/device-measure.sh batch     2.9B Q8_0: bench with --batch 1,8,32,64, tensor cores on and off
#   scripts/device-measure.sh formats   2.9B Q8_0, Q4_K_M, Q4_0, Q6_K: bench 512/128 (bytes, GB/s)
#   scripts/device-measure.sh serve     scripts/device-serve-load.sh with the carried binary
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} RWKV_EXPECT_BACKEND=vulkan
export RWKV_REQUIRE=coop,subgroups RWKV_GOLDEN_DIR="$PWD/testdata/golden"
out=${OUT:-bench-out}
bin=/tmp/devpack
mkdir -p "$out" "$bin" /tmp/models
[ -x "$bin/rwkv-cli" ] || tar -xJf .devpack.tar.xz -C "$bin"
cli=$bin/rwkv-cli
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/device.txt"
model() { # SIZE TYPE -> path, synthesized once
    local m=/tmp/models/$1-$2.gguf
    [ -f "$m" ] || $cli synth --size "$1" --type "$2" -o "$m" >/dev/null 2>&1
    echo "$m"
}
case "${1:-}" in
tests)
    for t in kernels-tests gpu-golden batch-tests; do
        "$bin/$t" --test-threads 8 > "$out/$t.txt" 2>&1
        echo "$t: $(grep 'test result' "$out/$t.txt")"
        grep -E 'FAILED|panicked' "$out/$t.txt" | head
    done ;;
batch)
    m=$(model 2.9b q8_0)
    $cli bench --model "$m" --prompt-tokens 512 --gen-tokens 128 --repeats 2 --batch 1,8,32,64 \
        > "$out/batch-coop.txt" 2>&1
    tail -30 "$out/batch-coop.txt"
    $cli bench --model "$m" --prompt-tokens 512 --gen-tokens 128 --repeats 1 --coop off --batch 1,8,64 \
        > "$out/batch-off.txt" 2>&1
    tail -8 "$out/batch-off.txt" ;;
formats)
    for t in q8_0 q4_k_m q4_0 q6_k; do
        m=$(model 2.9b $t)
        $cli bench --model "$m" --prompt-tokens 512 --gen-tokens 128 --repeats 2 > "$out/fmt-$t.txt" 2>&1
        echo "== $t"; grep -E 'median|quality|matvec|matmul' "$out/fmt-$t.txt" | head -10
    done ;;
serve)
    mkdir -p .dev && cp "$cli" .dev/rwkv-cli && bash scripts/device-serve-load.sh ;;
*)
    echo "usage: $0 tests|batch|formats|serve" >&2; exit 2 ;;
esac
