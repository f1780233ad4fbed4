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
# generates DECODE_TOKENS tokens greedily, preceded by a one-token run that times the first
# forward pass. After one untimed warm-up run per shape, RUNS runs are timed and the median,
# min and max are printed. Prefill tokens/s is the prompt length over the reported prefill
# time, which includes faulting the memory-mapped weights in. Decode tokens/s counts forward
# steps: the CLI samples the first token from the prefill logits, so N generated tokens take
# N - 1 forward steps. The bandwidth floor assumes each decode step reads every weight byte
# once (the tied embedding once, as the output head), at the read bandwidth that
# bench/membw.cpp measures with THREADS threads.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
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

# Prints "median min max" of the numbers on stdin, one number per line, with $1 decimals
# (default 1).
summarize() {
  sort -g | awk -v digits="${1:-1}" '{ v[NR] = $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          format = "%." digits "f %." digits "f %." digits "f\n"
          printf format, m, v[1], v[NR] }'
}

# Prints the median read bandwidth in GB/s with $1 threads.
measure_bandwidth() {
  "$work/membw" --threads "$1" --passes 9 | awk '/^threads/ { print $4 }'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), repository at commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "binary: $mambacpp"
echo "settings: threads $threads, $runs timed runs, prompt $prompt_tokens tokens, decode $decode_tokens tokens"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
bw1_before=$(measure_bandwidth 1)
bw_before=$(measure_bandwidth "$threads")
echo "read bandwidth before: 1 thread $bw1_before GB/s, $threads threads $bw_before GB/s"

# Runs `mambacpp generate` on checkpoint $1 with prompt $2 and $3 new tokens; its stderr
# (the speed lines) goes to $work/stderr.
run_generate() {
  "$mambacpp" generate -m "$1" --ids "$2" -n "$3" --temp 0 -t "$threads" \
    > /dev/null 2> "$work/stderr" || {
    echo "error: mambacpp generate failed on $1:" >&2
    cat "$work/stderr" >&2
    exit 1
  }
}

report=$work/report
: > "$report"
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

  # Each run pairs a one-token prefill with the full run. The weights are memory-mapped, so
  # a process's first forward pass also faults every weight page into its address space. The
  # one-token run measures that first-pass cost, so it can be taken out of the prefill rate.
  : > "$work/prefill"; : > "$work/first_pass"; : > "$work/prefill_net"; : > "$work/decode"
  run_generate "$dir" "$prompt" "$decode_tokens"  # warm-up: pages the file into the page cache
  for (( run = 1; run <= runs; run++ )); do
    run_generate "$dir" 1 0
    first_pass=$(awk '/^prefill:/ { print $5 }' "$work/stderr")
    run_generate "$dir" "$prompt" "$decode_tokens"
    awk '/^prefill:/ { print $2 / $5 }' "$work/stderr" >> "$work/prefill"
    echo "$first_pass" >> "$work/first_pass"
    awk -v first="$first_pass" '/^prefill:/ {
      net = $5 - first
      print (net > 0 ? $2 / net : "inf") }' "$work/stderr" >> "$work/prefill_net"
    awk '/^decode:/ { print ($2 - 1) / $5 }' "$work/stderr" >> "$work/decode"
  done
  {
    echo "$shape: $(awk -v b="$weight_bytes" 'BEGIN { printf "%.2f", b / 1e9 }') GB of weights"
    echo "  prefill, $prompt_tokens tokens:  $(summarize < "$work/prefill") tokens/s (median min max)"
    echo "  first pass over 1 token:  $(summarize < "$work/first_pass" 3) s"
    echo "  prefill less the first-pass time:  $(summarize < "$work/prefill_net") tokens/s"
    echo "  decode:  $(summarize < "$work/decode") tokens/s"
    echo "$weight_bytes $(summarize < "$work/decode")" > "$work/decode_$shape"
  } >> "$report"
  echo "measured $shape: load now $(cut -d' ' -f1-3 /proc/loadavg)"
done

bw1_after=$(measure_bandwidth 1)
bw_after=$(measure_bandwidth "$threads")
echo "read bandwidth after: 1 thread $bw1_after GB/s, $threads threads $bw_after GB/s"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat "$report"
echo

# The floor uses the mean of the two bandwidth figures taken around the runs.
echo "decode against the bandwidth floor ($threads threads, mean of the before and after figures):"
for shape in "${shapes[@]}"; do
  read -r weight_bytes decode_median _ < "$work/decode_$shape"
  awk -v shape="$shape" -v bytes="$weight_bytes" -v rate="$decode_median" \
      -v before="$bw_before" -v after="$bw_after" 'BEGIN {
    floor_rate = (before + after) / 2 * 1e9 / bytes
    printf "  %s: floor %.1f tokens/s, decode median %.1f tokens/s, ratio %.2f\n",
      shape, floor_rate, rate, rate / floor_rate }'
done
