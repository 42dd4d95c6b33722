# Two commands: `make demo` and `make test`. Both create .venv from scratch if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH_CPU_VERSION ?= 2.13.0

.PHONY: demo test venv lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@# No NVIDIA GPU -> install the CPU wheel of torch first, so that the `torch` dependency
	@# is already satisfied and pip does not pull a multi-GB CUDA build.
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: installing the default (CUDA) torch build"; \
	else \
		echo "No NVIDIA GPU: installing the CPU build of torch $(TORCH_CPU_VERSION)"; \
		$(PIP) install -q "torch==$(TORCH_CPU_VERSION)" || \
		$(PIP) install -q "torch==$(TORCH_CPU_VERSION)" --index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(PIP) install -q -e ".[test,bioimageio,cluster]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurodecon demo -o demo_output --overwrite

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo_output .pytest_cache build *.egg-info src/*.egg-info
