#!/usr/bin/env bash
# The GPU check (see gpu_check.py): on a machine with one NVIDIA GPU and no internet, with torch and
# torchvision preinstalled and the rest carried as wheels in .whl/ (made by gpu_check_prepare.sh).
# Usage, from the repo root: bash benchmarks/gpu_check.sh [OUT_DIR]   (about 8 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-output/gpu_check}
mkdir -p "$OUT_DIR"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  export PATH=/tmp/site/bin:$PATH
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_check.py --out "$OUT_DIR" "${@:2}"
