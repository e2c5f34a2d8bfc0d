#!/usr/bin/env bash
# An ODE likelihood (flow matching) against its solver's step count: the same checkpoint, the
# first IMAGES test images, the same seeded Hutchinson probes, nll_steps = each of STEPS. Each
# evaluation runs on a copy of the run folder, so the run's own results.json is left alone.
#
#   scripts/likelihood_vs_ode_steps.sh CKPT [IMAGES] [STEPS...]
#   e.g. scripts/likelihood_vs_ode_steps.sh docs/.../checkpoints/best_step000205.ckpt 128 4 8 16 32
# env: PY (default .venv/bin/python), EVAL (default mnist_cpu), DATA (default ../shared/data)
set -euo pipefail
CKPT=$(realpath "${1:?usage: scripts/likelihood_vs_ode_steps.sh CKPT [IMAGES] [STEPS...]}")
IMAGES=${2:-128}
shift $(( $# > 1 ? 2 : 1 ))
STEPS=("${@:-4 8 16 32}")
read -r -a STEPS <<< "${STEPS[*]}"
PY=${PY:-.venv/bin/python}
RUN=$(dirname "$(dirname "$CKPT")")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in "${STEPS[@]}"; do
  d="$work/steps_$n"
  mkdir -p "$d/checkpoints" && cp -r "$RUN/.hydra" "$RUN/results.json" "$d/" && cp "$CKPT" "$d/checkpoints/"
  sed -i "s/^  eval_batch_size: .*/  eval_batch_size: $IMAGES/" "$d/.hydra/config.yaml"
  start=$(date +%s)
  "$PY" -m genbench.eval "ckpt=$d/checkpoints/$(basename "$CKPT")" "eval=${EVAL:-mnist_cpu}" \
    dataset=mnist "dataset.root=${DATA:-../shared/data}" "+model.nll_steps=$n" \
    eval.nll_examples=128 eval.fidelity=false eval.throughput_samples=0 eval.grid_samples=0 \
    eval.memorisation=false "hydra.run.dir=$d" > "$d/eval.log" 2>&1 \
    || { echo "steps $n: evaluation failed"; tail -3 "$d/eval.log"; continue; }
  "$PY" -c "import json, sys; m = json.load(open(sys.argv[1]))['metrics']; \
print(f'steps $n: {m[\"nll_bpd\"]:.4f} ± {m[\"nll_bpd_stderr\"]:.4f} bits/dim on $IMAGES images ($(( $(date +%s) - start )) s)')" "$d/results.json"
done
