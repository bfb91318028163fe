#!/usr/bin/env bash
# The whole test suite in one process against `make test`'s two pytest-xdist workers, one after the other in one
# fresh clone of this checkout (committed state), on whatever machine runs it; prints both times and the ratio.
# Takes about 35 minutes on a quiet 2-core machine. Run it with nothing else on the machine: every other job
# changes both figures.
#
#   bash benchmarks/bench_suite.sh [CLONE_DIR]     # default: a new folder beside this checkout
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
clone=${1:-$repo/../tinyvoc-bench-suite}
[ -e "$clone" ] && { echo "bench_suite: $clone exists; give another folder" >&2; exit 2; }
git clone -q "$repo" "$clone"
cd "$clone"
make setup >/dev/null
timed() {  # label, then the pytest arguments; prints pytest's summary line and the wall seconds
  local label=$1 start end
  shift
  start=$(date +%s)
  CI=true .venv/bin/python -m pytest -q -p no:cacheprovider "$@" >"$clone/$label.log" 2>&1 || true
  end=$(date +%s)
  echo "$label: $(tail -1 "$clone/$label.log") -> $((end - start)) s" >&2
  echo $((end - start))
}
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
one=$(timed one-process)
two=$(timed two-workers -n 2 --dist loadfile)
python3 -c "print(f'one process {$one} s, two workers {$two} s: {$one / $two:.2f}x')"
