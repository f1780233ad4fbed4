#!/usr/bin/env bash
# Builds mambacpp and runs the whole test suite: unit, golden, tokenizer, training and CLI
# tests (build/), then each libFuzzer target for a fixed short time (build-fuzz/, clang).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"

if [ -f tests/fuzz/CMakeLists.txt ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release \
    -DMAMBACPP_BUILD_FUZZERS=ON -DMAMBACPP_BUILD_TESTS=OFF
  cmake --build build-fuzz -j"$jobs"
  ctest --test-dir build-fuzz --output-on-failure
fi

ctest --test-dir build --output-on-failure -j"$jobs"
