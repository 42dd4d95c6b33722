# Two commands: `make demo` and `make test`. Both create .venv from scratch if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH_CPU_VERSION ?= 2.13.0

# The napari plugin's viewer tests need an X display: pytest-xvfb (in the `napari` extra) starts
# an Xvfb server when the program exists. `make test` installs it (and the X/OpenGL libraries
# that Qt and napari load) with apt-get when run as root on Debian/Ubuntu; elsewhere, without
# Xvfb, those tests skip with a reason.
XVFB_PACKAGES := xvfb xauth libgl1 libgl1-mesa-dri libglx-mesa0 libegl1 libfontconfig1 \
	libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1

.PHONY: demo test venv lint bench clean xvfb

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
	$(PIP) install -q -e ".[test,bioimageio,cluster,napari]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurodecon demo -o demo_output --overwrite

xvfb:
	@if command -v Xvfb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Xvfb for the napari plugin's viewer tests"; \
		( apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $(XVFB_PACKAGES) ) >/dev/null || \
		echo "could not install Xvfb: the napari viewer tests will skip"; \
	else \
		echo "no Xvfb (apt-get install xvfb): the napari viewer tests will skip"; \
	fi

test: $(STAMP) xvfb
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts conftest.py
	$(VENV)/bin/ruff format --check src tests benchmarks scripts conftest.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo_output .pytest_cache build *.egg-info src/*.egg-info
