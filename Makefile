# charlm — every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CHARLM := $(VENV)/bin/charlm
STAMP  := $(VENV)/.installed-stamp
RUN_SECONDS ?= 120

.PHONY: run test test-browser lint bench bench-quality torch clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A newcomer's first command: install, get a corpus, train ~2 minutes, write text, score it.
run: $(STAMP)
	$(CHARLM) corpus get shakespeare || echo "charlm: no network for the shakespeare corpus; training falls back to the offline python corpus" >&2
	$(CHARLM) train --time-budget $(RUN_SECONDS)
	$(CHARLM) sample --temperature 0.8 --length 600 --seed 0
	$(CHARLM) eval perplexity

test: $(STAMP)
	$(PY) -m pytest -q

# The optional browser tests of the pages (report, live page, comparison): headless Chromium (Debian package `chromium`), installed if missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
test-browser: $(STAMP)
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	$(PY) -m pytest -q tests/report tests/cli/test_report_compare.py

lint: $(STAMP)
	$(VENV)/bin/ruff check charlm tests benchmarks

# PyTorch for the benchmark (stock PyTorch, and charlm's torch engine on the CPU) and the torch-engine
# tests (CI installs it: .ci/run); never needed by `make test`, which skips them without it. Only this exact
# version: it installs from a local CPU wheel, where another would download gigabytes of CUDA libraries.
# Where pip cannot install it, one line says so (pip's own output is left out) and the target still succeeds.
TORCH := torch==2.13.0
torch: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH) >/dev/null 2>&1 || \
		echo "charlm: $(TORCH) could not be installed here; the torch engine's tests and the benchmark's comparison skip" >&2

bench: $(STAMP) torch
	$(PY) -m benchmarks.bench

bench-quality: $(STAMP)
	$(PY) -m benchmarks.quality

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
