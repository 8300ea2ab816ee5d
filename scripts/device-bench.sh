#!/usr/bin/env bash
# Runs on a lent GPU machine (no Rust toolchain there): makes synthetic models with the carried
# release binary and benchmarks them. Needs `.gl` (Vulkan/GL loader .debs, see docs/perf.md) and
# `.dev/rwkv-cli` carried with the working tree. Results go to $OUT (or ./bench-out).
#
#   scripts/device-bench.sh [SIZE:TYPE ...]      default: 0.4b:f16 2.9b:q8_0 2.9b:f16
#   LOAD_ONLY=1 scripts/device-bench.sh ...      only the load, three times per model from the page
#                                                cache (the first also compiles the driver's shaders)
set -euo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# Tests run on this machine may not skip for want of tensor cores or subgroups (it has both).
export RWKV_REQUIRE=coop,subgroups
out=${OUT:-bench-out}
mkdir -p "$out" /tmp/models
cli=.dev/rwkv-cli
$cli adapters | tee "$out/adapters.txt"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(0.4b:f16 2.9b:q8_0 2.9b:f16)
for c in "${cases[@]}"; do
    size=${c%%:*}
    type=${c##*:}
    model=/tmp/models/$size-$type.gguf
    [ -f "$model" ] || $cli synth --size "$size" --type "$type" -o "$model" >/dev/null 2>&1
    if [ -n "${LOAD_ONLY:-}" ]; then
        cat "$model" >/dev/null
        for run in 1 2; do $cli bench --model "$model" --load-only --json > "$out/load-$size-$type-$run.json"; done
        $cli bench --model "$model" --load-only 2>&1 | tee "$out/load-$size-$type.txt"
        continue
    fi
    $cli bench --model "$model" --prompt-tokens "${PROMPT:-512}" --gen-tokens "${GEN:-256}" \
        --repeats "${REPEATS:-3}" --both --json > "$out/bench-$size-$type.json"
    $cli bench --model "$model" --prompt-tokens "${PROMPT:-512}" --gen-tokens "${GEN:-256}" --repeats 1 \
        2>&1 | tail -40 | tee "$out/bench-$size-$type.txt"
done
