#!/usr/bin/env bash
# Training tokens/s of `mambacpp train` and of the plain PyTorch Mamba in
# bench/torch_train/mamba_torch.py, on the same config, batch, context and thread count,
# run one after the other. Both count forward, backward and the AdamW step.
#
# Usage: bench/train_vs_torch.sh CONFIG_JSON [BATCH] [CTX] [STEPS] [THREADS]
#   defaults: batch 8, ctx 256, 6 steps, 2 threads
# MAMBACPP (default build/mambacpp) and PYTHON (default /usr/bin/python3, which needs
# torch: apt-get install python3-torch) pick the programs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${1:?usage: bench/train_vs_torch.sh CONFIG_JSON [BATCH] [CTX] [STEPS] [THREADS]}"
batch="${2:-8}"
ctx="${3:-256}"
steps="${4:-6}"
threads="${5:-2}"
mambacpp="${MAMBACPP:-$root/build/mambacpp}"
python="${PYTHON:-/usr/bin/python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Token ids do not change the speed; a vocabulary of 256 gets the byte-level tokenizer,
# anything else the GPT-NeoX one.
vocab="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$config")"
tokenizer="$root/tests/data/tokenizer/tokenizer.json"
if [[ "$vocab" -le 256 ]]; then tokenizer="$root/tests/data/tokenizer/byte_level/tokenizer.json"; fi

echo "config $config, batch $batch, ctx $ctx, $threads threads, load: $(cut -d' ' -f1-3 /proc/loadavg)"

# mambacpp: the tokens/s of its last progress line, which averages over the whole run
# (the first step included).
"$mambacpp" train --config "$config" --tokenizer "$tokenizer" \
  --data "$root/tests/data/text/tinyshakespeare/input.txt" --out "$work/run" \
  --steps "$steps" --batch "$batch" --ctx "$ctx" --warmup 1 --eval-every 0 --eval-batches 1 \
  -t "$threads" 2> "$work/mambacpp.log"
ours="$(tr '\r' '\n' < "$work/mambacpp.log" | grep -o '[0-9.]* tokens/s' | tail -1)"
echo "mambacpp train: $ours"

"$python" "$root/bench/torch_train/mamba_torch.py" bench "$config" --batch "$batch" --ctx "$ctx" \
  --steps "$steps" --warmup 1 --threads "$threads" | tail -1 | sed 's/^/pytorch: /'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
