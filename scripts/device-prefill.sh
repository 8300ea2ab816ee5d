#!/usr/bin/env bash
# Runs on a lent GPU machine (see device-bench.sh): prefill with and without cooperative matrices
# at 512 and 2048 prompt tokens, one JSON line per run in $OUT/prefill.jsonl, and the logits of a
# prompt prefilled both ways compared (max |difference|) in $OUT/coop-logits.txt.
#
#   scripts/device-prefill.sh [SIZE:TYPE ...]      default: 2.9b:q8_0 2.9b:f16
#   COOP_CHECK_MODEL=path/to/model.gguf COOP_CHECK_TOKENS=path/to/tokens.json   (optional)
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# Tests run on this machine may not skip for want of tensor cores or subgroups (it has both).
export RWKV_REQUIRE=coop,subgroups
out=${OUT:-bench-out}
mkdir -p "$out" /tmp/models
cli=.dev/rwkv-cli
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(2.9b:q8_0 2.9b:f16)
compare() { # max |a - b| over two raw f32 files
    python3 -c "
import struct,sys
a=open(sys.argv[1],'rb').read(); b=open(sys.argv[2],'rb').read()
n=len(a)//4; x=struct.unpack('<%df'%n,a); y=struct.unpack('<%df'%n,b)
print('values', n, 'max_abs_diff', max(abs(p-q) for p,q in zip(x,y)))" "$1" "$2"
}
if [ -n "${COOP_CHECK_MODEL:-}" ]; then
    for mode in off half split; do
        $cli logits --model "$COOP_CHECK_MODEL" --tokens-file "$COOP_CHECK_TOKENS" --positions all \
            --out "/tmp/logits-$mode.bin" --coop $mode > /dev/null
    done
    for mode in half split; do
        echo "$COOP_CHECK_MODEL coop $mode vs plain prefill: $(compare /tmp/logits-$mode.bin /tmp/logits-off.bin)" \
            >> "$out/coop-logits.txt"
    done
fi
for c in "${cases[@]}"; do
    size=${c%%:*}
    type=${c##*:}
    model=/tmp/models/$size-$type.gguf
    [ -f "$model" ] || $cli synth --size "$size" --type "$type" -o "$model" >/dev/null 2>&1
    tokens=/tmp/models/tokens-300.json
    python3 -c "import json; print(json.dumps([(i*7919+13)%65000 for i in range(300)]))" > "$tokens"
    for mode in off half split; do
        $cli logits --model "$model" --tokens-file "$tokens" --positions 0,127,128,299 --out "/tmp/l-$mode.bin" \
            --coop $mode > /dev/null
    done
    for mode in half split; do
        echo "$model coop $mode vs plain prefill: $(compare /tmp/l-$mode.bin /tmp/l-off.bin)" >> "$out/coop-logits.txt"
    done
    for p in 512 2048; do
        for mode in ${COOP_MODES:-half off}; do
            echo "# $size $type prompt $p coop $mode" >> "$out/prefill.jsonl"
            $cli bench --model "$model" --prompt-tokens "$p" --gen-tokens "${GEN:-64}" --repeats 1 --json --coop $mode \
                >> "$out/prefill.jsonl" 2>> "$out/prefill.err"
        done
    done
done
