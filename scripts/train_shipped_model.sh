#!/bin/sh
# Trains the model that `mambacpp generate` uses when given no -m: a 2.7M-parameter
# Mamba-2 over UTF-8 bytes (configs/shakespeare-mamba2.json, a byte-level tokenizer.json),
# on Tiny Shakespeare with the last 10% of its bytes held out. The run is 1,000 fixed
# steps (4M tokens), which took 15 minutes on 2 threads of a 2-core AVX-512 machine
# (4,400 tokens/s). A 2,000-step run overfits: its validation loss was lowest near step
# 1,000 (1.433) and rose to 1.474 by step 1,400, when it was stopped. Another run on
# the same machine with the same thread count ends with the same weights.
#
# Usage: scripts/train_shipped_model.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR  folder with the mambacpp program (default: build)
#   OUT_DIR    where the model goes (default: models/shakespeare-mamba2)
# The run itself (checkpoints every 250 steps, optimizer state) goes to $RUN_DIR, by
# default a temporary folder removed at the end.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=${2:-$root/models/shakespeare-mamba2}
data=$root/tests/data/text/tinyshakespeare/input.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=${RUN_DIR:-$work/run}

python3 "$root/scripts/make_byte_tokenizer.py" "$work/tokenizer.json"

"$build/mambacpp" train \
  --config "$root/configs/shakespeare-mamba2.json" \
  --tokenizer "$work/tokenizer.json" \
  --data "$data" \
  --out "$run" \
  --steps 1000 --batch 16 --ctx 256 \
  --lr 2e-3 --warmup 100 --weight-decay 0.1 --clip 1.0 \
  --val-fraction 0.1 --eval-every 100 --eval-batches 16 --save-every 250 \
  --seed 1 -t 2

# Ship the weights, config and tokenizer; the optimizer state stays behind.
mkdir -p "$out"
cp "$run/config.json" "$run/model.safetensors" "$run/tokenizer.json" "$out/"

# The held-out perplexity that the README reports: the last 10% of the bytes, read in
# windows of 256 tokens.
size=$(wc -c < "$data")
tail -c $((size / 10)) "$data" > "$work/heldout.txt"
"$build/mambacpp" perplexity -m "$out" -f "$work/heldout.txt" --ctx 256 -t 2 2>/dev/null
