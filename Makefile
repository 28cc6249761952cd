# Two commands do all set-up on a fresh machine with Python 3.11+: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLUGINS := comfyui forge a1111 sdnext civitai
EDITABLES := -e '.[api,dev]' $(foreach p,$(PLUGINS),-e plugins/$(p))

.PHONY: install lint test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(EDITABLES)
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy synapse_core $(foreach p,$(PLUGINS),plugins/$(p)/synapse_$(p))

test: install lint
	$(BIN)/pytest -n 2

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
