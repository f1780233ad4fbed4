#!/usr/bin/env bash
# Run mambacpp and llama.cpp on the same Mamba weights and print one Markdown table of their
# prefill and decode speeds with the ratio mambacpp / llama.cpp.
#
# Usage: bench/compare_llamacpp.sh [options] LLAMA_BIN CHECKPOINT_DIR...
#
#   LLAMA_BIN       a llama.cpp build folder (with bin/llama-bench) or the folder that
#                   contains llama-bench and llama-batched-bench
#   CHECKPOINT_DIR  a state-spaces checkpoint folder (config.json + model.safetensors), for
#                   example one written by scripts/make_random_checkpoint.py
#
# Options:
#   -g DIR   folder with the GGUF files, named <checkpoint folder name>-<dtype>.gguf
#            (default: the current folder). bench/checkpoint_to_gguf.py writes them.
#   -d LIST  weight dtypes to compare, comma-separated from f32,f16,bf16 (default: f32,f16,bf16)
#   -t N     threads for both engines (default: 2)
#   -r N     repetitions of each mambacpp and llama-bench test (default: 3)
#   -p N     prompt tokens of the prefill test (default: 512)
#   -n N     generated tokens per sequence of the decode tests (default: 128)
#   -B N     sequences decoding at once in the batched decode test (default: 8)
#   -m PATH  the mambacpp binary (default: build/mambacpp)
#   -o DIR   keep the raw outputs of every run in DIR (default: a new temporary folder)
#
# The engines alternate: for each model and dtype both run back to back, and which one goes
# first flips from one pair to the next, so a change in machine load falls on both.
#
# Tests and what each engine reports:
#   ppP          prefill of one P-token prompt: `mambacpp bench -p P` and llama-bench pp
#   tgN          N decode steps of one sequence: `mambacpp bench -n N -b 1` and llama-bench tg
#   tgN x B      N decode steps of B sequences at once, tokens/s summed over the sequences:
#                `mambacpp bench -b B` (fresh states) and llama-batched-bench S_TG
#                (after a 16-token prompt per sequence, one run after a warm-up and
#                after its one-sequence case)
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

gguf_dir=.
dtypes=f32,f16,bf16
threads=2
repetitions=3
n_prompt=512
n_generate=128
n_parallel=8
mambacpp=build/mambacpp
log_dir=

while getopts "g:d:t:r:p:n:B:m:o:h" option; do
  case "$option" in
    g) gguf_dir="$OPTARG" ;;
    d) dtypes="$OPTARG" ;;
    t) threads="$OPTARG" ;;
    r) repetitions="$OPTARG" ;;
    p) n_prompt="$OPTARG" ;;
    n) n_generate="$OPTARG" ;;
    B) n_parallel="$OPTARG" ;;
    m) mambacpp="$OPTARG" ;;
    o) log_dir="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

if [[ $# -lt 2 ]]; then
  echo "compare_llamacpp.sh: missing arguments: LLAMA_BIN and at least one CHECKPOINT_DIR" >&2
  usage >&2
  exit 2
fi

llama_bin="$1"
shift
[[ -x "$llama_bin/bin/llama-bench" ]] && llama_bin="$llama_bin/bin"
for tool in llama-bench llama-batched-bench; do
  if [[ ! -x "$llama_bin/$tool" ]]; then
    echo "compare_llamacpp.sh: $tool not found in $llama_bin; build llama.cpp with" \
         "'cmake --build BUILD --target llama-bench llama-batched-bench'" >&2
    exit 1
  fi
done
if [[ ! -x "$mambacpp" ]]; then
  echo "compare_llamacpp.sh: mambacpp binary $mambacpp not found; build it or pass -m PATH" >&2
  exit 1
fi

IFS=, read -r -a dtype_list <<< "$dtypes"
for dtype in "${dtype_list[@]}"; do
  case "$dtype" in
    f32|f16|bf16) ;;
    *) echo "compare_llamacpp.sh: invalid dtype '$dtype' in -d, expected f32, f16 or bf16" >&2
       exit 2 ;;
  esac
done

# Check every input before the first run, so a missing file cannot stop a long run halfway.
for checkpoint in "$@"; do
  if [[ ! -f "$checkpoint/config.json" ]]; then
    echo "compare_llamacpp.sh: $checkpoint/config.json not found; expected a checkpoint folder" >&2
    exit 1
  fi
  name="$(basename "$checkpoint")"
  for dtype in "${dtype_list[@]}"; do
    gguf="$gguf_dir/$name-$dtype.gguf"
    if [[ ! -f "$gguf" ]]; then
      echo "compare_llamacpp.sh: $gguf not found; write it with" \
           "'python3 bench/checkpoint_to_gguf.py $checkpoint $gguf --outtype $dtype" \
           "--tokenizer tests/data/tokenizer/tokenizer.json --gguf-py LLAMA_SRC/gguf-py'" >&2
      exit 1
    fi
  done
done

if [[ -z "$log_dir" ]]; then
  log_dir="$(mktemp -d -t compare_llamacpp.XXXXXX)"
fi
mkdir -p "$log_dir"
echo "raw outputs: $log_dir" >&2
uptime > "$log_dir/uptime_before.txt"

run_mambacpp() {
  local checkpoint="$1" dtype="$2" out="$3"
  echo "  mambacpp bench --dtype $dtype" >&2
  "$mambacpp" bench -m "$checkpoint" -p "$n_prompt" -n "$n_generate" -b "1,$n_parallel" \
    -t "$threads" -r "$repetitions" --dtype "$dtype" -o json > "$out"
}

run_llamacpp() {
  local gguf="$1" out="$2" batched_out="$3"
  echo "  llama-bench $(basename "$gguf")" >&2
  "$llama_bin/llama-bench" -m "$gguf" -p "$n_prompt" -n "$n_generate" -t "$threads" \
    -r "$repetitions" -o json > "$out" 2> "$out.stderr"
  echo "  llama-batched-bench $(basename "$gguf")" >&2
  # The context must hold every sequence's prompt and generated tokens. The one-sequence
  # case runs first because the first case was several times slower than a rerun in our
  # runs (llama.cpp 1425386fd996), and it serves as a check against llama-bench tg.
  local context=$((n_parallel * (16 + n_generate)))
  "$llama_bin/llama-batched-bench" -m "$gguf" -c "$context" -npp 16 -ntg "$n_generate" \
    -npl "1,$n_parallel" -t "$threads" --output-format jsonl > "$batched_out" \
    2> "$batched_out.stderr"
}

pair=0
for checkpoint in "$@"; do
  name="$(basename "$checkpoint")"
  for dtype in "${dtype_list[@]}"; do
    echo "$name $dtype" >&2
    prefix="$log_dir/$name-$dtype"
    gguf="$gguf_dir/$name-$dtype.gguf"
    if (( pair % 2 == 0 )); then
      run_mambacpp "$checkpoint" "$dtype" "$prefix.mambacpp.json"
      run_llamacpp "$gguf" "$prefix.llama-bench.json" "$prefix.batched.jsonl"
    else
      run_llamacpp "$gguf" "$prefix.llama-bench.json" "$prefix.batched.jsonl"
      run_mambacpp "$checkpoint" "$dtype" "$prefix.mambacpp.json"
    fi
    pair=$((pair + 1))
  done
done

uptime > "$log_dir/uptime_after.txt"

python3 - "$log_dir" "$n_prompt" "$n_generate" "$n_parallel" "$threads" "$dtypes" "$@" <<'EOF'
import json
import os
import sys

log_dir, n_prompt, n_generate, n_parallel, threads, dtypes = sys.argv[1:7]
checkpoints = sys.argv[7:]
n_prompt, n_generate, n_parallel = int(n_prompt), int(n_generate), int(n_parallel)


def cell(mean, stddev=None):
    if mean is None:
        return "n/a"
    return f"{mean:.1f}" if stddev is None else f"{mean:.1f} ± {stddev:.1f}"


def llama_bench_figure(results, n_prompt_test, n_gen_test):
    for r in results:
        if r["n_prompt"] == n_prompt_test and r["n_gen"] == n_gen_test:
            return r["avg_ts"], r["stddev_ts"]
    return None, None


llama_commit = None
print(f"{threads} threads. mambacpp: `mambacpp bench`. llama.cpp: llama-bench, and "
      f"llama-batched-bench for {n_parallel} sequences. Ratio = mambacpp / llama.cpp.")
print()
print("| model | weights | test | mambacpp tokens/s | llama.cpp tokens/s | ratio |")
print("|---|---|---|---:|---:|---:|")
for checkpoint in checkpoints:
    name = os.path.basename(os.path.normpath(checkpoint))
    for dtype in dtypes.split(","):
        prefix = os.path.join(log_dir, f"{name}-{dtype}")
        with open(prefix + ".mambacpp.json") as f:
            ours = {(r["test"], r["batch"]): r for r in json.load(f)["results"]}
        with open(prefix + ".llama-bench.json") as f:
            theirs = json.load(f)
        llama_commit = llama_commit or theirs[0].get("build_commit")
        with open(prefix + ".batched.jsonl") as f:
            batched = [json.loads(line) for line in f if line.startswith("{")]

        rows = []
        ours_pp = ours.get((f"pp{n_prompt}", 1))
        rows.append((f"pp{n_prompt}", ours_pp, llama_bench_figure(theirs, n_prompt, 0)))
        ours_tg = ours.get((f"tg{n_generate}", 1))
        rows.append((f"tg{n_generate}", ours_tg, llama_bench_figure(theirs, 0, n_generate)))
        ours_batched = ours.get((f"tg{n_generate}", n_parallel))
        theirs_batched = next((b["speed_tg"] for b in batched if b["pl"] == n_parallel), None)
        rows.append((f"tg{n_generate} x {n_parallel}", ours_batched, (theirs_batched, None)))

        for test, ours_row, (theirs_mean, theirs_stddev) in rows:
            ours_mean = ours_row["tokens_per_s"] if ours_row else None
            ours_stddev = ours_row["stddev"] if ours_row else None
            ratio = f"{ours_mean / theirs_mean:.2f}" if ours_mean and theirs_mean else "n/a"
            print(f"| {name} | {dtype} | {test} | {cell(ours_mean, ours_stddev)} | "
                  f"{cell(theirs_mean, theirs_stddev)} | {ratio} |")

print()
print(f"llama.cpp build commit: {llama_commit}")
for moment in ("before", "after"):
    with open(os.path.join(log_dir, f"uptime_{moment}.txt")) as f:
        print(f"load {moment}: {f.read().strip()}")
EOF
