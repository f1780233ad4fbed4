#!/usr/bin/env bash
# Measure prefill and decode speed on random checkpoints of real model shapes, beside the
# machine's memory read bandwidth, and print decode speed as a fraction of the bandwidth floor.
#
# Usage: bench/run_real_size.sh CKPT_DIR [SHAPE ...]
#   CKPT_DIR  where the checkpoints live (outside the repository); a missing CKPT_DIR/SHAPE is
#             written first by scripts/make_random_checkpoint.py (mamba-1.4b needs 5.5 GB)
#   SHAPE     mamba-130m, mamba-1.4b (the default: both), mamba2-130m or mamba2-1.3b
# Environment (defaults in brackets):
#   MAMBACPP [build/mambacpp]  the CLI to measure
#   THREADS [2]  RUNS [5]  PROMPT_TOKENS [512]  DECODE_TOKENS [64]  SEED [0]
#
# Each run is one `mambacpp generate` process that reads a PROMPT_TOKENS prompt and then
# generates DECODE_TOKENS tokens greedily; after one untimed warm-up run per shape, RUNS runs
# are timed and the median, min and max are printed. Prefill tokens/s is the prompt length over
# the reported prefill time. Decode tokens/s counts forward steps: the CLI samples the first
# token from the prefill logits, so N generated tokens take N - 1 forward steps.
# The bandwidth floor assumes each decode step reads every weight byte once (the tied embedding
# once, as the output head), at the read bandwidth that bench/membw.cpp measures with THREADS
# threads.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit $(( $# < 1 ? 2 : 0 ))
fi
ckpt_dir=$1
shift
shapes=("$@")
[[ ${#shapes[@]} -gt 0 ]] || shapes=(mamba-130m mamba-1.4b)

mambacpp=${MAMBACPP:-$repo/build/mambacpp}
threads=${THREADS:-2}
runs=${RUNS:-5}
prompt_tokens=${PROMPT_TOKENS:-512}
decode_tokens=${DECODE_TOKENS:-64}
seed=${SEED:-0}

if [[ ! -x $mambacpp ]]; then
  echo "error: $mambacpp not found; build it with" >&2
  echo "  cmake -S $repo -B $repo/build && cmake --build $repo/build -j2 --target mambacpp_cli" >&2
  echo "or point MAMBACPP at a built binary." >&2
  exit 1
fi
if (( decode_tokens < 2 )); then
  echo "error: DECODE_TOKENS must be at least 2 (the first token needs no forward step)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

${CXX:-g++} -std=c++20 -O3 -pthread "$repo/bench/membw.cpp" -o "$work/membw"

# A fixed prompt of ids spread over the vocabulary.
prompt=$(awk -v n="$prompt_tokens" 'BEGIN {
  for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), (i * 7919) % 50000 }')

# Prints "median min max" of the numbers on stdin, one number per line.
summarize() {
  sort -g | awk '{ v[NR] = $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.1f %.1f %.1f\n", m, v[1], v[NR] }'
}

# Prints the median read bandwidth in GB/s with $1 threads.
measure_bandwidth() {
  "$work/membw" --threads "$1" --passes 9 | awk '/^threads/ { print $4 }'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "binary: $mambacpp"
echo "settings: threads $threads, $runs timed runs, prompt $prompt_tokens tokens, decode $decode_tokens tokens"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
bw1_before=$(measure_bandwidth 1)
bw_before=$(measure_bandwidth "$threads")
echo "read bandwidth before: 1 thread $bw1_before GB/s, $threads threads $bw_before GB/s"

results=()
for shape in "${shapes[@]}"; do
  dir=$ckpt_dir/$shape
  if [[ ! -f $dir/model.safetensors || ! -f $dir/config.json ]]; then
    python3 "$repo/scripts/make_random_checkpoint.py" --seed "$seed" "$shape" "$dir"
  fi
  # Tensor bytes: the file less its 8-byte length field and JSON header.
  weight_bytes=$(python3 -c '
import struct, sys, os
path = sys.argv[1]
with open(path, "rb") as f:
    header = struct.unpack("<Q", f.read(8))[0]
print(os.path.getsize(path) - 8 - header)' "$dir/model.safetensors")

  : > "$work/prefill" ; : > "$work/decode"
  for (( run = 0; run <= runs; run++ )); do
    "$mambacpp" generate -m "$dir" --ids "$prompt" -n "$decode_tokens" --temp 0 -t "$threads" \
      > /dev/null 2> "$work/stderr" || {
      echo "error: mambacpp generate failed on $dir:" >&2
      cat "$work/stderr" >&2
      exit 1
    }
    (( run == 0 )) && continue  # warm-up: pages the file into the page cache
    awk '/^prefill:/ { print $2 / $5 }' "$work/stderr" >> "$work/prefill"
    awk '/^decode:/ { print ($2 - 1) / $5 }' "$work/stderr" >> "$work/decode"
  done
  read -r prefill_median prefill_min prefill_max < <(summarize < "$work/prefill")
  read -r decode_median decode_min decode_max < <(summarize < "$work/decode")
  results+=("$shape $weight_bytes $prefill_median $prefill_min $prefill_max $decode_median $decode_min $decode_max")
  echo "measured $shape: load now $(cut -d' ' -f1-3 /proc/loadavg)"
done

bw1_after=$(measure_bandwidth 1)
bw_after=$(measure_bandwidth "$threads")
echo "read bandwidth after: 1 thread $bw1_after GB/s, $threads threads $bw_after GB/s"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# The floor uses the mean of the two bandwidth figures taken around the runs.
printf '%-12s %9s %26s %26s %11s %12s\n' shape "weights" "prefill tok/s med (min-max)" \
  "decode tok/s med (min-max)" "floor tok/s" "decode/floor"
for row in "${results[@]}"; do
  echo "$row $bw_before $bw_after" | awk '{
    bandwidth = ($9 + $10) / 2 * 1e9
    floor_rate = bandwidth / $2
    printf "%-12s %7.2f GB %12.1f (%.1f-%.1f) %14.1f (%.1f-%.1f) %11.1f %12.2f\n",
      $1, $2 / 1e9, $3, $4, $5, $6, $7, $8, floor_rate, $6 / floor_rate }'
done
