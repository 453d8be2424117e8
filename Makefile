# vae_lab — the documented commands. `make train` and `make test` create the environment first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Point the data root at the shared datasets when they sit beside the checkout.
ifneq ($(wildcard ../shared/data),)
export VAE_LAB_DATA ?= $(abspath ../shared/data)
endif
export WANDB_MODE ?= offline
# pytest processes (pytest-xdist): the suite's subprocess runs mostly wait on imports and one core.
PYTEST_WORKERS ?= 2

.PHONY: install train test test-fast lint bench clean

install: $(VENV)/.installed

# pip (not uv) so pip's configuration finds the CPU torch wheel; constraints pin torch==2.13.0.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# PYTHONDONTWRITEBYTECODE=1 is set on these machines: compile once or every import is slow.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

train: install
	$(BIN)/python -m vae_lab.train $(ARGS)

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# In-process tests only: no subprocess CLI runs, no DDP, no end-to-end trainings.
test-fast: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check vae_lab tests bench
	$(BIN)/ruff format --check vae_lab tests bench

# The time budget of bench/run.py counts the peer environment's setup too.
bench: install
	start=$$(date +%s) && bash bench/peer_env.sh && $(BIN)/python bench/run.py --since $$start $(ARGS)

clean:
	rm -rf outputs multirun/2* .pytest_cache
