#!/usr/bin/env bash
# The MNIST benchmark on one GPU: every family (conf/model/*.yaml, sized for MNIST by
# conf/dataset_model/mnist_*.yaml) trained with the same FLOP budget, then evaluated on the test
# split, the real-data floor, and the table.
#
#   scripts/gpu_mnist_benchmark.sh [OUT_DIR] [FLOPS]
#     OUT_DIR   where runs, floor and table go (default outputs/benchmark/mnist-gpu)
#     FLOPS     training FLOPs per run (default 5e14: the 7 trainings of one seed side by side in ~5 min
#               on an H200, the evaluations one at a time in ~4; see docs/benchmark/mnist-gpu)
#   env: DATA (default ../shared/data: MNIST/raw under it), PY (default python3),
#        HW (default gpu; cpu rehearses the script), VAL_EXAMPLES (default 1024: the validation
#        images each family's own test estimator scores for model selection), EXTRA / EVAL_EXTRA (more overrides for
#        training / evaluation, e.g. EXTRA="dataset.num_train=512" for a rehearsal), EXTRA_<model>
#        (overrides for one family's training, e.g. EXTRA_ebm="model.ais_temps=[5,10,20]"),
#        MODELS (default: every family), SEEDS (default "0 1 2": each family is trained once
#        per seed, runs/<model>_seed<s>; the table gives mean ± std over them),
#        SKIP_TRAINING=1 (evaluate the runs already under OUT_DIR/runs again, e.g. after a call
#        that ran out of time),
#        PARALLEL=1 (default) trains the families side by side on the one GPU (small models
#        leave it idle; the FLOP budget, not the wall clock, bounds training, so this changes no
#        number but train_time_s), each with TRAIN_THREADS CPU threads (cores / jobs); samples/s
#        is measured one family at a time, then the evaluations run one at a time with
#        EVAL_THREADS (all cores).
#        TRAIN_TIMEOUT (seconds, default none): stop training there; a run cut short is listed
#        as unfinished by the table. EVAL_TIMEOUT (seconds, default none): the most one family's
#        evaluation may take; DEADLINE (seconds from the start, default none): no evaluation
#        starts after it and a running one is stopped there (the table is built from what
#        finished, so a call on a lent machine always returns a table).
#
# Precision: fp32 (hardware=gpu hardware.precision=32-true) for every family: bf16 has not been
# validated here for the flow's log-determinants, the EBM's AIS or the bits/dim bounds, and at
# these sizes a step is bound by kernel launches, not by matrix throughput.
set -euo pipefail
OUT_DIR=${1:-${OUT_DIR:-outputs/benchmark/mnist-gpu}}
FLOPS=${2:-${FLOPS:-5e14}}
DATA=${DATA:-../shared/data}
PY=${PY:-python3}
PARALLEL=${PARALLEL:-1}
CORES=$(nproc)
# Thread pools (torch, BLAS, OpenMP) per process: the side-by-side trainings share the cores;
# each evaluation runs alone and takes them all.
EVAL_THREADS=${EVAL_THREADS:-$CORES}
HW=${HW:-gpu}
VAL_EXAMPLES=${VAL_EXAMPLES:-1024}  # validation images model selection scores (as make benchmark-mnist)
read -r -a extra <<< "${EXTRA:-}"
read -r -a eval_extra <<< "${EVAL_EXTRA:-}"
read -r -a MODELS <<< "${MODELS:-arm diffusion ebm flow flow_matching gan vae}"
read -r -a SEEDS <<< "${SEEDS:-0 1 2}"
JOBS=()  # <model>_seed<s>: one run folder per family and seed
for m in "${MODELS[@]}"; do for s in "${SEEDS[@]}"; do JOBS+=("${m}_seed$s"); done; done
TRAIN_THREADS=${TRAIN_THREADS:-$(( CORES / ${#JOBS[@]} > 1 ? CORES / ${#JOBS[@]} : 1 ))}
mkdir -p "$OUT_DIR/runs" "$OUT_DIR/floor" "$OUT_DIR/table"

common=(dataset=mnist "dataset.root=$DATA" "hardware=$HW" hardware.precision=32-true
        hardware.num_workers=0 "hardware.threads=$TRAIN_THREADS" budget=flops
        "budget.flops=$FLOPS" "budget.val_examples=$VAL_EXAMPLES" logger=none "experiment_name=mnist_$HW" callbacks=quiet
        "${extra[@]}")

train() {  # <model>_seed<s> -> runs/<model>_seed<s>: training only (the evaluations follow)
  local model=${1%_seed*} seed=${1##*_seed}
  local own="EXTRA_$model" model_extra
  read -r -a model_extra <<< "${!own:-}"
  ${TRAIN_TIMEOUT:+timeout "$TRAIN_TIMEOUT"} "$PY" -m genbench.train "${common[@]}" \
    "${model_extra[@]}" "model=$model" "seed=$seed" eval.nll=false eval.fidelity=false eval.throughput_samples=0 \
    eval.grid_samples=0 "hydra.run.dir=$OUT_DIR/runs/$1" > "$OUT_DIR/runs/$1.train.log" 2>&1
}

start=$(date +%s)
if [ -n "${SKIP_TRAINING:-}" ]; then
  echo "training: skipped (SKIP_TRAINING: the runs under $OUT_DIR/runs are evaluated again)"
elif [ "$PARALLEL" = 1 ]; then
  for j in "${JOBS[@]}"; do train "$j" & done
  wait
else
  for j in "${JOBS[@]}"; do train "$j"; done
fi
echo "training: $(( $(date +%s) - start )) s"

best() {  # the run's best validation checkpoint (every family has one: val/nll_bpd or val/fid)
  ls "$OUT_DIR"/runs/$1/checkpoints/best_step*.ckpt 2>/dev/null | tail -1
}
evaluate() {  # model, then overrides -> updates runs/<model>/results.json
  local m=$1 ckpt
  shift
  ckpt=$(best "$m")
  if [ -z "$ckpt" ]; then echo "$m: no best checkpoint (see runs/$m.train.log)"; return 0; fi
  local limit
  limit=$(left)
  ${limit:+timeout "$limit"} "$PY" -m genbench.eval "ckpt=$ckpt" "hardware=$HW" \
    "hardware.threads=$EVAL_THREADS" "$@" \
    "${eval_extra[@]}" \
    "hydra.run.dir=$OUT_DIR/runs/$m" >> "$OUT_DIR/runs/$m.eval.log" 2>&1 \
    || echo "$m: evaluation failed (see runs/$m.eval.log)"
}

# The evaluation, one family at a time with the GPU and every core to itself: test NLL, samples/s (2048
# samples, batch 512, after two warm-up batches), 5000 samples' FID/KID/IS/PR/density/coverage
# with intervals, memorisation, class coverage; the real-data floor and the
# independent-pixel baseline go first (cheap, and the first fills the reference cache).
left() {  # seconds to DEADLINE, capped by EVAL_TIMEOUT ("" when neither is set)
  local l=${EVAL_TIMEOUT:-}
  if [ -n "${DEADLINE:-}" ]; then
    local d=$(( start + DEADLINE - $(date +%s) ))
    if [ "$d" -lt 1 ]; then d=1; fi
    if [ -z "$l" ] || [ "$d" -lt "$l" ]; then l=$d; fi
  fi
  echo "$l"
}
t=$(date +%s)
full=(eval.num_samples=5000 eval.fidelity_batch_size=512 eval.throughput_samples=2048
      eval.throughput_batch_size=512 eval.throughput_warmup_batches=2)
data=(dataset=mnist "dataset.root=$DATA" "hardware=$HW" "hardware.threads=$EVAL_THREADS"
      "${full[@]}")
limit=$(left)
${limit:+timeout "$limit"} "$PY" -m genbench.eval floor=true "${data[@]}" "${eval_extra[@]}" \
  "hydra.run.dir=$OUT_DIR/floor" > "$OUT_DIR/floor.log" 2>&1 || echo "floor failed"
limit=$(left)
${limit:+timeout "$limit"} "$PY" -m genbench.eval baseline=pixels "${data[@]}" "${eval_extra[@]}" \
  "hydra.run.dir=$OUT_DIR/pixel_histogram" > "$OUT_DIR/pixels.log" 2>&1 || echo "baseline failed"
for j in "${JOBS[@]}"; do
  s=$(date +%s); evaluate "$j" "${full[@]}"; echo "  $j: $(( $(date +%s) - s )) s"
done
echo "evaluation: $(( $(date +%s) - t )) s"

"$PY" -m genbench.table "source=$OUT_DIR" "out_dir=$OUT_DIR/table" > "$OUT_DIR/table.log" 2>&1
cat "$OUT_DIR/table/table.md" 2>/dev/null || cat "$OUT_DIR/table.log"
echo "total: $(( $(date +%s) - start )) s"
