# migorder: `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint unit bench proofs notebooks clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "migorder needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The main job: check the default scenario (q35, vIOMMU, VFIO behind root ports, virtio-mem,
# 4 of 8 vCPUs) on the newest bundled QEMU, then the same VM from a 10.0 source.
# `check` exits 1 when it finds something; that is the point of the demo, not a failure.
demo: $(STAMP)
	$(BIN)/migorder check; test $$? -le 1
	$(BIN)/migorder check --qemu 10.0; test $$? -le 1

lint: $(STAMP)
	$(BIN)/ruff check ordering tests benchmarks notebooks proofs
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q --doctest-modules ordering tests

test: lint unit

proofs: $(STAMP)
	@for p in proofs/*.py; do echo "== $$p"; $(BIN)/python $$p || exit 1; done

# Run every notebooks/NN-*.py and write its .ipynb with outputs (committed: GitHub shows them).
notebooks: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python notebooks/build.py

bench: $(STAMP)
	$(BIN)/python benchmarks/check_scale.py
	$(BIN)/python benchmarks/stream_read.py
	$(BIN)/python benchmarks/verify.py
	$(BIN)/python benchmarks/fleet_scale.py
	$(BIN)/python benchmarks/explore_vs_spin.py
	$(BIN)/python benchmarks/hostile_inputs.py
	$(BIN)/python benchmarks/cli_startup.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
