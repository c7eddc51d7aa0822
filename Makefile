# The two commands: `make demo` and `make test`. Each does all of its own set-up on a fresh
# Debian machine: a .venv with the package installed (editable), and Debian's Fashion-MNIST.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FASHION_DIR := /usr/share/datasets/fashion-mnist
DEMO_OUT ?= runs/demo

.PHONY: demo test lint bench datasets venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install when the package description changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Fashion-MNIST from Debian's package, where apt is usable (root on Debian); otherwise say so.
datasets:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST: present in $(FASHION_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Fashion-MNIST: installing Debian's dataset-fashion-mnist"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	    || echo "Fashion-MNIST: apt-get failed; going on without it (tests that need it are skipped)"; \
	else \
	  echo "Fashion-MNIST: apt is not usable here (not root or not Debian); going on without it"; \
	fi

demo: venv datasets
	$(BIN)/mnistlab data info fashion-mnist
	$(BIN)/mnistlab data show fashion-mnist --out $(DEMO_OUT)/examples.png

test: venv datasets
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
