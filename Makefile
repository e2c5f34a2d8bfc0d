# Every target builds .venv itself when it is missing or older than pyproject.toml.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export HYDRA_FULL_ERROR ?= 0

.PHONY: install test test-slow lint format benchmark benchmark-mnist benchmark-mnist-gpu toy-benchmark bench-overhead bench-sampling bench-eval clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/python -m pytest -q --durations=15

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check genbench tests scripts
	$(BIN)/ruff format --check genbench tests scripts
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix genbench tests scripts
	$(BIN)/ruff format genbench tests scripts

# The main job: every family x seeds 0, 1, 2 on digits on the CPU at one FLOP budget, the
# real-data floor, then the table (docs/benchmark/digits/) and the runs folder behind it
# (docs/benchmark/digits/runs/: each run's results.json, no checkpoints). A rerun resumes
# interrupted jobs and skips finished ones (ckpt_path=auto): BENCH=... for a fresh directory.
STAMP := $(shell date +%Y-%m-%d_%H-%M-%S)
BENCH ?= outputs/benchmark/digits
DOCS := docs/benchmark/digits

benchmark: install
	$(BIN)/genbench-train -m +experiment=digits_benchmark hydra.sweep.dir=$(BENCH)
	$(BIN)/genbench-eval floor=true dataset=digits hydra.run.dir=$(BENCH)/floor
	rm -rf $(DOCS)/runs
	$(BIN)/genbench-table source=$(BENCH) out_dir=$(DOCS) export_runs=$(DOCS)/runs wandb_report=true

# MNIST (../shared/data or MNIST_ROOT=...) on the CPU: every family, one seed.
MNIST_ROOT ?= ../shared/data
MNIST_BENCH ?= outputs/benchmark/mnist
benchmark-mnist: install
	$(BIN)/genbench-train -m +experiment=mnist_cpu_benchmark dataset.root=$(MNIST_ROOT) hydra.sweep.dir=$(MNIST_BENCH)
	$(BIN)/genbench-eval floor=true dataset=mnist dataset.root=$(MNIST_ROOT) eval.num_samples=5000 hydra.run.dir=$(MNIST_BENCH)/floor
	rm -rf docs/benchmark/mnist/runs
	$(BIN)/genbench-table source=$(MNIST_BENCH) out_dir=docs/benchmark/mnist export_runs=docs/benchmark/mnist/runs

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# CKPT=outputs/runs/<run>/checkpoints/last.ckpt (default: a 20-step VAE trained first)
bench-eval: install
	@if [ -z "$(CKPT)" ]; then $(BIN)/genbench-train trainer=fast eval=fast logger=none hydra.run.dir=outputs/bench_eval_vae; fi
	$(BIN)/python scripts/bench_eval.py --ckpt $(or $(CKPT),outputs/bench_eval_vae/checkpoints/last.ckpt)
