#!/usr/bin/env bash
# Runs on a lent GPU machine (no Rust toolchain there): the `serve` load figures of docs/perf.md
# (issue 19). Serves a synthetic 2.9B Q8_0 model with the carried release binary and runs
# `rwkv-cli loadtest` against it: 64 concurrent streaming clients for two minutes. Needs `.gl`
# (Vulkan/GL loader .debs, see docs/perf.md) and `.dev/rwkv-cli` carried with the working tree.
# Results go to $OUT (or ./bench-out): serve-load.json (the report), serve-load.txt, serve-log.txt
# (the server's stderr: one line per request).
#
#   scripts/device-serve-load.sh            BATCH=64 CLIENTS=64 DURATION=120 MAX_TOKENS=256 by default
set -euo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
out=${OUT:-bench-out}
mkdir -p "$out" /tmp/models
cli=.dev/rwkv-cli
model=/tmp/models/2.9b-q8_0.gguf
[ -f "$model" ] || $cli synth --size 2.9b --type q8_0 -o "$model" >/dev/null 2>&1
port=${PORT:-8000}
$cli serve --model "$model" --port "$port" --max-batch "${BATCH:-64}" 2> "$out/serve-log.txt" &
server=$!
for _ in $(seq 1 300); do
    grep -q "^serving" "$out/serve-log.txt" && break
    kill -0 "$server" 2>/dev/null || { cat "$out/serve-log.txt"; exit 1; }
    sleep 1
done
load=(loadtest --url "http://127.0.0.1:$port" --clients "${CLIENTS:-64}" --duration "${DURATION:-120}"
      --max-tokens "${MAX_TOKENS:-256}")
$cli "${load[@]}" --json > "$out/serve-load.json"
cat "$out/serve-load.json"
# A short human-readable run for the log beside it.
$cli loadtest --url "http://127.0.0.1:$port" --clients "${CLIENTS:-64}" --duration 10 \
    --max-tokens "${MAX_TOKENS:-256}" | tee "$out/serve-load.txt"
kill -TERM "$server"
if wait "$server"; then echo "serve exited 0 after SIGTERM"; else echo "serve exited $? after SIGTERM"; exit 1; fi
tail -3 "$out/serve-log.txt"
