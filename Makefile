# Every target builds .venv itself when it is missing or older than pyproject.toml.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export HYDRA_FULL_ERROR ?= 0

.PHONY: benchmark-scaling benchmark-scaling-publish claims install test test-slow lint format benchmark benchmark-publish verify-benchmark benchmark-mnist benchmark-mnist-publish benchmark-mnist-gpu benchmark-sensitivity benchmark-sensitivity-publish toy-benchmark bench-overhead bench-sampling bench-eval bench-train clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -e '.[dev]'
	@# pip byte-compiles ~16,000 files on one core; compileall does it on every core (a fresh
	@# .venv in ~95 s instead of ~115 here). A file that does not compile (a package's Python 2
	@# test data) is skipped, as pip skips it.
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $@

install: $(BIN)/.installed

# One pytest-xdist worker a core (at most 4), one torch thread each (tests/conftest.py), a test
# file to a worker (its module fixtures stay shared): from a fresh clone on this 2-core machine
# the tests took 6.0-6.4 min against 10.7 in one process (docs/performance.md). TEST_WORKERS=0
# runs them in this process.
TEST_WORKERS ?= auto
test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxprocesses=4 --dist loadfile --durations=15

# -rP: the slow tests' own output too (the fault-injection test prints its kill seed and times)
test-slow: install
	$(BIN)/python -m pytest -q -m slow -rP

lint: install
	$(BIN)/ruff check genbench tests scripts
	$(BIN)/ruff format --check genbench tests scripts
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix genbench tests scripts
	$(BIN)/ruff format genbench tests scripts

# The main job: every family x seeds 0, 1, 2 on digits on the CPU at one FLOP budget, the
# real-data floor, then the table under $(BENCH)/table and, cell by cell, how it compares with
# the committed one (docs/benchmark/digits). A rerun resumes interrupted jobs and skips finished
# ones (ckpt_path=auto): BENCH=... for a fresh directory. `make benchmark-publish` then copies
# the table and the runs behind it (results.json, no checkpoints) into docs/.
STAMP := $(shell date +%Y-%m-%d_%H-%M-%S)
BENCH ?= outputs/benchmark/digits
DOCS := docs/benchmark/digits

benchmark: install
	$(BIN)/genbench-train -m +experiment=digits_benchmark hydra.sweep.dir=$(BENCH)
	$(BIN)/genbench-eval floor=true dataset=digits eval=benchmark hydra.run.dir=$(BENCH)/floor
	rm -rf $(BENCH)/table
	$(BIN)/genbench-table source=$(BENCH) out_dir=$(BENCH)/table export_runs=$(BENCH)/table/runs wandb_report=true
	$(BIN)/python scripts/compare_tables.py $(BENCH)/table/table.csv $(DOCS)/table.csv

benchmark-publish:
	test -f $(BENCH)/table/table.csv || { echo "run make benchmark first"; exit 1; }
	rm -rf $(DOCS)/runs && mkdir -p $(DOCS) && cp -r $(BENCH)/table/. $(DOCS)/

# Re-run a subset of the committed digits runs at this checkout and compare every metric
# (relative 1e-6): RUNS=model:seed,... (default: seed 1 of arm, vae, gan, flow_matching, ebm).
verify-benchmark: install
	$(BIN)/python scripts/verify_benchmark.py $(DOCS)/runs $(if $(RUNS),--runs $(RUNS))

# Quality against training compute (issue 26): the digits benchmark's families at 3e11 and 1e12
# FLOPs (seeds 0, 1, 2) and 1.2e13 (SCALING_TOP_SEEDS, default seed 0), plus the main
# benchmark's 3.5e12 runs (make benchmark first: $(BENCH)), without the sampler curves; then the
# fits, tables and plots under $(SCALING)/report. Reruns skip finished jobs.
SCALING ?= outputs/benchmark/scaling
SCALING_TOP_SEEDS ?= 0
benchmark-scaling: install
	test -d $(BENCH)/floor || { echo "make benchmark first: the 3.5e12 runs and the floor come from $(BENCH)"; exit 1; }
	for f in 3e11 1e12; do \
	  $(BIN)/genbench-train -m +experiment=digits_benchmark budget.flops=$$f eval.curve=null hydra.sweep.dir=$(SCALING)/flops_$$f || exit 1; \
	done
	$(BIN)/genbench-train -m +experiment=digits_benchmark budget.flops=1.2e13 seed=$(SCALING_TOP_SEEDS) eval.curve=null hydra.sweep.dir=$(SCALING)/flops_1.2e13
	$(BIN)/python scripts/scaling_report.py --out $(SCALING)/report $(SCALING) $(BENCH)

benchmark-scaling-publish:
	test -f $(SCALING)/report/scaling.md || { echo "run make benchmark-scaling first"; exit 1; }
	rm -rf docs/benchmark/scaling && mkdir -p docs/benchmark/scaling
	cp $(SCALING)/report/* docs/benchmark/scaling/
	$(BIN)/python -c "from pathlib import Path; from genbench.table import export_runs; export_runs(Path('$(SCALING)'), Path('docs/benchmark/scaling/runs'))"

# Sensitivity to the learning rate (issue 33): every family at lr_scale 1/3 and 3, seeds 0-2, at
# the digits benchmark's budget (42 runs; the 1x runs are the benchmark's). Resumable like the
# others; `make benchmark-sensitivity-publish` copies the records to docs/benchmark/sensitivity.
SENSITIVITY ?= outputs/benchmark/sensitivity
benchmark-sensitivity: install
	$(BIN)/genbench-train -m +experiment=digits_sensitivity hydra.sweep.dir=$(SENSITIVITY)

benchmark-sensitivity-publish:
	test -d $(SENSITIVITY) || { echo "run make benchmark-sensitivity first"; exit 1; }
	rm -rf docs/benchmark/sensitivity/runs && mkdir -p docs/benchmark/sensitivity
	$(BIN)/python -c "from pathlib import Path; from genbench.table import export_runs; export_runs(Path('$(SENSITIVITY)'), Path('docs/benchmark/sensitivity/runs'))"

# The lesson's claims, each with its verdict per data set (issue 33): docs/claims.md from the
# committed runs under docs/benchmark (digits, scaling, mnist, mnist-gpu) alone; trains nothing.
# About a minute on two cores, most of it refitting the compute-scaling curves.
claims: install
	$(BIN)/python scripts/claims_report.py --out docs/claims.md --readme README.md

# MNIST (../shared/data or MNIST_ROOT=...) on the CPU: every family, one seed, 3e13 FLOPs, the
# floor and the independent-pixel baseline; table under $(MNIST_BENCH)/table;
# `make benchmark-mnist-publish` copies it to docs/benchmark/mnist.
MNIST_ROOT ?= ../shared/data
MNIST_BENCH ?= outputs/benchmark/mnist
MNIST_EVAL := eval=mnist_cpu dataset=mnist dataset.root=$(MNIST_ROOT)
benchmark-mnist: install
	$(BIN)/genbench-train -m +experiment=mnist_cpu_benchmark dataset.root=$(MNIST_ROOT) hydra.sweep.dir=$(MNIST_BENCH)
	$(BIN)/genbench-eval floor=true $(MNIST_EVAL) hydra.run.dir=$(MNIST_BENCH)/floor
	$(BIN)/genbench-eval baseline=pixels $(MNIST_EVAL) hydra.run.dir=$(MNIST_BENCH)/pixel_histogram
	rm -rf $(MNIST_BENCH)/table
	$(BIN)/genbench-table source=$(MNIST_BENCH) out_dir=$(MNIST_BENCH)/table export_runs=$(MNIST_BENCH)/table/runs

benchmark-mnist-publish:
	test -f $(MNIST_BENCH)/table/table.csv || { echo "run make benchmark-mnist first"; exit 1; }
	rm -rf docs/benchmark/mnist/runs && mkdir -p docs/benchmark/mnist && cp -r $(MNIST_BENCH)/table/. docs/benchmark/mnist/

# MNIST on one GPU (a lent machine): scripts/gpu_mnist_benchmark.sh, table under OUT_DIR/table.
benchmark-mnist-gpu: install
	DATA=$(MNIST_ROOT) PY=$(BIN)/python scripts/gpu_mnist_benchmark.sh outputs/benchmark/mnist-gpu

toy-benchmark: install
	$(BIN)/genbench-train -m +experiment=toy2d_benchmark hydra.sweep.dir=outputs/benchmark/toy2d_$(STAMP)
	$(BIN)/genbench-table source=outputs/benchmark/toy2d_$(STAMP)

bench-overhead: install
	$(BIN)/python scripts/bench_overhead.py

bench-sampling: install
	$(BIN)/python scripts/bench_sampling.py

# Training throughput per family (digits and MNIST): achieved FLOP/s and fraction of the matmul
# peak measured in the same process; HW=gpu on a GPU machine. Written to docs/benchmark/train-throughput.
HW ?= cpu
bench-train: install
	$(BIN)/python scripts/bench_train.py --hardware $(HW) --data-root $(MNIST_ROOT) --profile 5 --out docs/benchmark/train-throughput/$(HW)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The sample metrics of one MNIST family's samples (SAMPLES=x.npy, 2000 long images), timed
# with the reference cache warm, at this checkout and at commit BEFORE, interleaved.
BEFORE ?= 281015c
SAMPLES ?= outputs/bench_eval/samples.npy
bench-eval: install
	scripts/bench_eval.sh $(BEFORE) $(SAMPLES)
