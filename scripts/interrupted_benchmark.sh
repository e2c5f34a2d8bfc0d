#!/usr/bin/env bash
# `make benchmark` interrupted for real: Ctrl-C (SIGINT to its process group) twice at times
# drawn from SEED, each time rerun, then run to the end; its table is compared cell by cell
# with the uninterrupted benchmark's (REFERENCE, default outputs/benchmark/digits/table).
#
#   scripts/interrupted_benchmark.sh [SEED] [OUT] [REFERENCE]
#
# Prints the interrupt times, the wall time of each launch and of the final rerun, and the
# comparison (every cell but the machine-dependent timings must be identical).
set -euo pipefail
SEED=${1:-0}
OUT=${2:-outputs/benchmark/digits-interrupted}
REF=${3:-outputs/benchmark/digits/table}
read -r t1 t2 < <(python3 -c "import random; r = random.Random($SEED); print(r.uniform(60, 900), r.uniform(60, 900))")
echo "seed $SEED: Ctrl-C after ${t1%.*} s of the first launch, ${t2%.*} s of the second"
launch() {  # [seconds before Ctrl-C]
  local start=$(date +%s)
  # env --default-signal=INT: a command started in the background of a script inherits SIGINT
  # ignored (POSIX), so the Ctrl-C below would be ignored by make and genbench-train.
  setsid env --default-signal=INT make benchmark "BENCH=$OUT" > "$OUT.launch$2.log" 2>&1 &
  local pid=$!
  if [ -n "$1" ]; then
    sleep "$1"
    kill -INT -- "-$pid" 2>/dev/null || true
  fi
  wait "$pid" || true
  echo "launch $2: $(( $(date +%s) - start )) s ($(grep -c 'skipped (completed' "$OUT.launch$2.log" || true) jobs skipped)"
}
mkdir -p "$(dirname "$OUT")"
launch "$t1" 1
launch "$t2" 2
launch "" 3
python3 scripts/compare_tables.py "$OUT/table/table.csv" "$REF/table.csv"
