# Two commands do all set-up on a fresh machine with Python 3.11+: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLUGINS := comfyui forge a1111 sdnext civitai s3
EDITABLES := -e '.[api,dev]' $(foreach p,$(PLUGINS),-e plugins/$(p))
# `make bench` times what users install: no dev tools (schemathesis brings rich, which httpx
# then imports on every start-up, about 35 ms here); the api extra and playwright (which only drives
# the browser of the web page's figure, in its own process) are there, and moto[server] (the loopback
# S3 server of the remotes figure, run by bench/run.py itself; synapse never imports it)
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: install system-deps lint test demo bench audit clean

install: $(STAMP)

$(STAMP): pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(EDITABLES)
	@touch $(STAMP)

# The browser tests drive Debian's chromium (Playwright's own browser download is not used);
# the link-mode tests mount a FAT image (dosfstools makes it, fusefat mounts it without a loop device).
system-deps:
	@test -x /usr/bin/chromium -a -x /sbin/mkfs.vfat -a -x /usr/bin/fusefat || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dosfstools fusefat; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy synapse_core $(foreach p,$(PLUGINS),plugins/$(p)/synapse_$(p))

test: install lint
	$(BIN)/pytest -n 2

# kill -9 at every filesystem and git call of every mutating command (tests/test_crashpoints.py)
audit: install
	SYNAPSE_CRASH_SWEEP=all $(BIN)/pytest -n 2 tests/test_crashpoints.py

demo: install
	$(BIN)/python scripts/demo.py

$(BENCH_STAMP): Makefile pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml)
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[api]' playwright 'moto[server]>=5.0' $(foreach p,$(PLUGINS),-e plugins/$(p))
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) system-deps
	$(BENCH_VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache
