#!/usr/bin/env bash
# The sample metrics of fixed samples, timed at commit BEFORE and at this checkout, interleaved
# (3 pairs), each with its own warm cache; prints each run's JSON line, then the per-pair ratios.
#   scripts/bench_eval.sh BEFORE SAMPLES.npy    (make bench-eval)
set -euo pipefail
BEFORE=${1:?usage: scripts/bench_eval.sh BEFORE SAMPLES.npy}
SAMPLES=$(realpath "${2:?usage: scripts/bench_eval.sh BEFORE SAMPLES.npy}")
PY=$(realpath -s "${PY:-.venv/bin/python}")  # -s: a venv's python is a link to the base one
ROOT=$(realpath "${MNIST_ROOT:-../shared/data}")
HERE=$(pwd)
work=$(mktemp -d)
git worktree add --detach "$work/before" "$BEFORE" > /dev/null
trap 'git worktree remove --force "$work/before"; rm -rf "$work"' EXIT
args=(--samples "$SAMPLES" --root "$ROOT" --repeats 1)
for i in 1 2 3; do
  (cd "$work/before" && PYTHONPATH=. "$PY" "$HERE/scripts/bench_sample_metrics.py" "${args[@]}" \
     --cache "$work/cache-before") | tee -a "$work/before.jsonl"
  PYTHONPATH=. "$PY" scripts/bench_sample_metrics.py "${args[@]}" --cache "$work/cache-now" \
    | tee -a "$work/now.jsonl"
done
"$PY" - "$work/before.jsonl" "$work/now.jsonl" <<'PY'
import json, statistics, sys
before, now = ([json.loads(l) for l in open(f)] for f in sys.argv[1:])
ratios = [b["median_s"] / n["median_s"] for b, n in zip(before, now)]
print(f"warm-cache sample metrics: before {[round(b['median_s'], 1) for b in before]} s, "
      f"now {[round(n['median_s'], 1) for n in now]} s; per-pair speed-up "
      f"{[round(r, 2) for r in ratios]}, median {statistics.median(ratios):.2f}x")
same = {k: v for k, v in now[0]["metrics"].items() if before[0]["metrics"].get(k) != v}
print(f"metrics that differ from before: {sorted(same) or 'none'}")
PY
