# Two commands do everything on a fresh machine with Python 3.11.5 or newer, git and make:
#   make report   regenerate every artefact (dvc repro) and build the book
#   make test     the test suite
# Both create .venv and install the pinned environment once; reruns skip that.

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
TORCH := $(shell grep '^torch==' requirements.lock)
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0

.PHONY: setup report test test-fast paper data bench robustness encoders lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11, 5))' || { echo "make: $(PYTHON) is \
	Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); the pinned packages need \
	3.11.5 or newer (make PYTHON=python3.12 ...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)  # a GPU machine's CUDA libraries; nothing on a CPU
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name embstudy --display-name "embstudy (.venv)" >/dev/null
	@touch $@

report: $(STAMP)
	dvc repro
	python -m embstudy.book

test: $(STAMP)  # everything, one xdist worker per core (each pipeline fixture's tests in one worker)
	python -m pytest -n auto --dist loadgroup --no-loadscope-reorder --durations=30  # the slowest steps: where the time went

test-fast: $(STAMP)  # the unit tier: no pipeline, worker pool or real model (tests marked slow)
	python -m pytest -m "not slow" -n auto

PROFILE ?= conf/paper.yaml
paper: $(STAMP)  # the real study: hub checkpoints + real data (GPU advised); PROFILE=conf/english.yaml...: see README
	python -m embstudy.use_profile $(PROFILE)
	python -m embstudy.fetch
	dvc repro
	python -m embstudy.book

data: $(STAMP)  # the real corpus: downloaded by dvc update, or a hand-downloaded one recorded in data.dvc
	python -m embstudy.fetch

bench: $(STAMP)  # extract vs the seed's method, floor, padding, memory -> bench/results.{json,md}; PIPELINE=1: + demo from scratch
	python -m embstudy.bench $(if $(PIPELINE),--pipeline)

robustness: $(STAMP)  # demo fine-tuning per model x 5 seeds x kernels x threads -> bench/robustness.{json,md}
	dvc repro tokenize
	python -m embstudy.bench.robustness

ENCODERS := camembert flaubert
encoders: $(STAMP)  # pre-train the shipped demo encoders into checkpoints/ (both at once, a core each)
	dvc repro prepare
	$(MAKE) -j2 $(ENCODERS:%=encoder-%)

encoder-%: $(STAMP)
	python -m embstudy.pretrain $* --out checkpoints/$* --threads 1

lock: $(STAMP)  # after changing pyproject.toml's dependencies
	grep '^#' requirements.lock > requirements.lock.new
	python -m pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu/torch==2.13.0/' >> requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:  # stage outputs only; the DVC cache keeps them for `dvc checkout`
	rm -rf artifacts _book
