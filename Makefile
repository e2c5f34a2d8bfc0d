# Every target builds .venv itself when it is missing or older than pyproject.toml.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export HYDRA_FULL_ERROR ?= 0

.PHONY: install test test-slow lint format benchmark toy-benchmark bench-overhead bench-sampling bench-eval clean

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

# The main job: all families on digits on the CPU, then the comparison table.
STAMP := $(shell date +%Y-%m-%d_%H-%M-%S)

benchmark: install
	$(BIN)/genbench-train -m +experiment=digits_benchmark hydra.sweep.dir=outputs/benchmark/digits_$(STAMP)
	$(BIN)/genbench-table source=outputs/benchmark/digits_$(STAMP)

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
