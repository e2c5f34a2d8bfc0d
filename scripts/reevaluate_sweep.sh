#!/usr/bin/env bash
# Re-evaluate every run of a sweep at its best validation checkpoint, in place (results.json
# updated, samples.png beside it), with the experiment's evaluation settings, e.g. after the
# evaluation code changed, or to add curves to runs trained before they existed:
#
#   scripts/reevaluate_sweep.sh outputs/benchmark/digits eval=benchmark
#   EXTRA_ebm="+model.ais_chains=8" scripts/reevaluate_sweep.sh outputs/benchmark/mnist eval=mnist_cpu
#
# Arguments after the sweep folder go to every genbench-eval call; EXTRA_<model> (the run's
# model_name, "/" as "_") adds overrides for that model's runs only (estimator settings such as
# +model.nll_t_samples=...). Each run's data and model come from its own .hydra/config.yaml.
set -euo pipefail
SWEEP=${1:?usage: scripts/reevaluate_sweep.sh SWEEP_DIR [overrides...]}
shift
BIN=${BIN:-.venv/bin}
for run in "$SWEEP"/*/; do
  ckpt=$(ls "$run"checkpoints/best_step*.ckpt 2>/dev/null | tail -1 || true)
  [ -n "$ckpt" ] || { echo "skipped $run (no best checkpoint)"; continue; }
  model=$(sed -n 's/^model_name: *//p' "$run.hydra/config.yaml" | tr '/' '_')
  own="EXTRA_$model"
  read -r -a extra <<< "${!own:-}"
  start=$(date +%s)
  "$BIN/genbench-eval" "ckpt=$ckpt" "$@" "${extra[@]}" "hydra.run.dir=$run" \
    > "${run}reevaluate.log" 2>&1 \
    || { echo "FAILED $run (see ${run}reevaluate.log)"; continue; }
  echo "$run $(( $(date +%s) - start )) s: $(tail -1 "${run}reevaluate.log")"
done
