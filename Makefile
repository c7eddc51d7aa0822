# The two commands: `make demo` and `make test`. Each does all of its own set-up on a fresh
# Debian machine: a .venv with the package installed (editable), and Debian's Fashion-MNIST.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FASHION_DIR := /usr/share/datasets/fashion-mnist

# PyTorch 2.13.0 (a test-only reference) comes from the machine's local wheel folder when there is
# one; otherwise pip looks in the package registry.
ifneq ($(wildcard /opt/wheels),)
PIP_FIND_LINKS ?= /opt/wheels
export PIP_FIND_LINKS
endif

.PHONY: demo test lint speed bench docs datasets browser venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install when the package description changes. The test extra adds pytest, hypothesis,
# ruff and the reference PyTorch (tests only).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Debian packages the project uses, installed where apt is usable (root on Debian); otherwise
# say so and go on (the tests that need them are then skipped):
#   dataset-fashion-mnist  Fashion-MNIST in /usr/share/datasets/fashion-mnist
#   chromium               headless browser for the report test (make test only)
#   chromium-driver        WebDriver for it: the serve test draws on the page (make test only)
APT_INSTALL = apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

datasets:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST: present in $(FASHION_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Fashion-MNIST: installing Debian's dataset-fashion-mnist"; \
	  ($(APT_INSTALL) dataset-fashion-mnist >/dev/null) \
	    || echo "Fashion-MNIST: apt-get failed; going on without it (tests that need it are skipped)"; \
	else \
	  echo "Fashion-MNIST: apt is not usable here (not root or not Debian); going on without it"; \
	fi

browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "Chromium and chromium-driver: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Chromium: installing Debian's chromium and chromium-driver (report and serve tests)"; \
	  ($(APT_INSTALL) chromium chromium-driver >/dev/null) \
	    || echo "Chromium: apt-get failed; going on without it (the browser tests are skipped)"; \
	else \
	  echo "Chromium: apt is not usable here; going on without it (the browser tests are skipped)"; \
	fi

# The main job: look at Fashion-MNIST, then train the default preset on it and print its test
# accuracy (a new run folder under runs/ each time).
demo: venv datasets
	$(BIN)/mnistlab data info fashion-mnist
	$(BIN)/mnistlab data show fashion-mnist --out runs/fashion-mnist-examples.png
	$(BIN)/mnistlab train --dataset fashion-mnist

test: $(VENV)/.installed-test datasets browser
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks

# The engine's epoch times against the targets (never part of the tests).
speed: venv datasets
	$(BIN)/python benchmarks/engine_speed.py

# mnistlab side by side with PyTorch, Keras on JAX and scikit-learn (the `bench` extra).
$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(VENV)/.installed-bench datasets
	$(BIN)/mnistlab bench

# The API reference and docs/ARCHITECTURE.md as HTML in docs/_build/html (the `docs` extra);
# every Sphinx warning is an error.
$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache docs/_build docs/api/generated
