#!/usr/bin/env bash
# Compares tokenizer encode throughput, one thread, of mambacpp and Hugging Face tokenizers
# (the Rust library through its npm binding) on the same text: the whole file in one call and
# line by line. Prints MB/s (10^6 bytes per second) of the first run and the median of
# REPEATS runs, and whether the two produced identical ids.
#
# Usage: bench/tokenizer/run.sh [BUILD_DIR] [TEXT_FILE] [REPEATS]
#   BUILD_DIR  a configured build of this repository (default: build); the script builds
#              the library there and compiles tokenizer_speed against it
#   TEXT_FILE  default: tests/data/text/wikitext-2/wiki.test.raw
# Environment: ORACLE_DIR, a folder with the tokenizers npm package installed (default:
# a copy of $SHARED_TOOLS/tokoracle under /tmp, installed with npm on first use, where
# SHARED_TOOLS defaults to ../shared/tools next to the repository).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build}"
text="${2:-$repo/tests/data/text/wikitext-2/wiki.test.raw}"
repeats="${3:-5}"
tokenizer_json="$repo/tests/data/tokenizer/tokenizer.json"

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  echo "error: $build is not a configured build directory (run cmake -S $repo -B $build first)" >&2
  exit 1
fi

build_log="$(mktemp)"
if ! cmake --build "$build" --target mambacpp -j"$(nproc)" >"$build_log" 2>&1; then
  cat "$build_log" >&2
  echo "error: building the mambacpp library in $build failed" >&2
  exit 1
fi
rm -f "$build_log"
speed_bin="$build/bench/tokenizer/tokenizer_speed"
if [[ ! -x "$speed_bin" ]]; then
  speed_bin="$build/tokenizer_speed"
  c++ -O2 -std=c++20 -I"$repo/include" "$repo/bench/tokenizer/tokenizer_speed.cpp" \
    "$build/src/libmambacpp.a" $(pkg-config --libs libpcre2-8) -lutf8proc -lopenblas -lpthread \
    -o "$speed_bin"
fi

oracle_dir="${ORACLE_DIR:-}"
if [[ -z "$oracle_dir" ]]; then
  shared_tools="${SHARED_TOOLS:-$repo/../shared/tools}"
  oracle_dir="/tmp/mambacpp-tokoracle"
  if [[ ! -d "$oracle_dir/node_modules/tokenizers" ]]; then
    if [[ ! -d "$shared_tools/tokoracle" ]]; then
      echo "error: no oracle: set ORACLE_DIR to a folder with the tokenizers npm package" >&2
      exit 1
    fi
    rm -rf "$oracle_dir"
    cp -r "$shared_tools/tokoracle" "$oracle_dir"
    (cd "$oracle_dir" && npm install --no-audit --no-fund >/dev/null)
  fi
fi

ours="$("$speed_bin" "$tokenizer_json" "$text" "$repeats")"
theirs="$(node "$repo/bench/tokenizer/oracle_speed.mjs" "$oracle_dir" "$tokenizer_json" "$text" "$repeats")"

python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours = {r["mode"]: r for r in map(json.loads, sys.argv[1].splitlines())}
theirs = {r["mode"]: r for r in map(json.loads, sys.argv[2].splitlines())}
print(f"{'mode':6} {'ids':>8} {'same ids':>8} | {'mambacpp MB/s':>21} | {'HF tokenizers MB/s':>21} | {'speedup':>15}")
print(f"{'':6} {'':>8} {'':>8} | {'first':>10} {'median':>10} | {'first':>10} {'median':>10} | {'first':>7} {'median':>7}")
for mode in ("whole", "lines"):
    a, b = ours[mode], theirs[mode]
    same = a["ids"] == b["ids"] and a["fnv1a"] == b["fnv1a"]
    print(f"{mode:6} {a['ids']:>8} {('yes' if same else 'NO'):>8} | {a['first_mb_s']:>10.2f} {a['median_mb_s']:>10.2f} | "
          f"{b['first_mb_s']:>10.2f} {b['median_mb_s']:>10.2f} | "
          f"{a['first_mb_s'] / b['first_mb_s']:>6.1f}x {a['median_mb_s'] / b['median_mb_s']:>6.1f}x")
PY
cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs || true)"
echo "machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
