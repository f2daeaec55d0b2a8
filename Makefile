# Two commands: `make demo` and `make test`. Both set everything up on a fresh machine (idempotent).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint bench setup browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,dask]"
	$(PY) -m pip check
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# What the report needs beyond Python: Debian's chromium (report.pdf), chromium-driver and poppler-utils (the
# browser and PDF tests), and axe-core from npm (the accessibility check), pinned. Debian packages need root, as on
# the project machines.
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js
AXE_VERSION := 4.14.1
DEBIAN_PACKAGES := chromium chromium-driver poppler-utils

browser: $(AXE)
	@if [ ! -x $(CHROMIUM) ] || ! command -v chromedriver >/dev/null || ! command -v pdftotext >/dev/null; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null) \
	      || echo "warning: could not install $(DEBIAN_PACKAGES); the browser tests will fail"; \
	  else echo "warning: $(DEBIAN_PACKAGES) missing and not root; the browser tests will fail"; fi; \
	fi

$(AXE):
	@mkdir -p $(VENV)/axe
	@npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@$(AXE_VERSION) >/dev/null \
	  || echo "warning: could not install axe-core; the accessibility test will fail"

demo: $(STAMP) browser
	$(VENV)/bin/hiddenpop demo

test: $(STAMP) browser
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
