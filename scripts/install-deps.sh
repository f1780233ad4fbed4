#!/usr/bin/env bash
# Installs the Debian 12 packages mambacpp needs to build and test. Run as root (or with
# sudo available); it is safe to run again.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  clang libclang-rt-14-dev          # libFuzzer targets
  nlohmann-json3-dev libcli11-dev   # JSON, command line
  libpcre2-dev libutf8proc-dev      # tokenizer: split regex, NFC
  libopenblas-dev                   # sgemm for prefill
  libgtest-dev libbenchmark-dev     # tests, kernel benchmarks
  python3                           # scripts
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
