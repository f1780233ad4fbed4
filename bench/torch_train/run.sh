#!/usr/bin/env bash
# Measure plain-PyTorch Mamba training speed (forward, backward, AdamW step) on the CPU.
#
# Usage: bench/torch_train/run.sh CONFIG_JSON [--batch 8] [--ctx 256] [--steps 5]
#                                 [--warmup 1] [--threads 2]
# With no CONFIG_JSON, runs both configs in bench/torch_train/configs/.
# PYTHON selects the interpreter (default python3); it needs torch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

if ! "$python" -c "import torch" 2>/dev/null; then
  echo "run.sh: $python cannot import torch; install it (Debian: apt-get install python3-torch)" \
       "or set PYTHON to an interpreter that has it" >&2
  exit 1
fi

if [[ $# -eq 0 || "$1" == --* ]]; then
  for config in "$here"/configs/*.json; do
    "$python" "$here/mamba_torch.py" bench "$config" "$@"
    echo
  done
else
  config="$1"
  shift
  "$python" "$here/mamba_torch.py" bench "$config" "$@"
fi
