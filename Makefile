# Two entry points for a new machine: `make demo` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build by default so a laptop or CI box does not download CUDA; override for GPU machines.
TORCH_SPEC ?= torch==2.13.0
# A local torch wheel cache is used when present (as on the project's build machines).
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test bench bench-all clean-demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) "$(TORCH_SPEC)" || $(PIP_INSTALL) "$(TORCH_SPEC)" --index-url https://download.pytorch.org/whl/cpu
	$(PIP_INSTALL) -e ".[train,dev,hf]"
	touch $@

demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

# The report test renders report.html in headless Chromium (a Debian package, installed once).
test: $(VENV)/.installed
	bash scripts/install-chromium.sh
	$(PY) -m pytest -q -n 2

# clean against datatrove on the same WARC files, clean's 1 -> 2 core scaling and its per-stage profile,
# written into BENCHMARKS.md; under 15 minutes on 2 cores (the first run also installs datatrove into
# .bench/datatrove-venv, a few minutes). The other benchmarks: `make bench-all`.
bench: $(VENV)/.installed
	PYTHONPATH="$(CURDIR)" $(PY) bench/vs_datatrove.py

bench-all: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash bench/run_all.sh

clean-demo:
	rm -rf out/demo
