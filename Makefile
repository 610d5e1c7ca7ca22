# Two entry points, each doing its own set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run once test setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# Bytecode now, as a non-editable install would: with PYTHONDONTWRITEBYTECODE set,
	# every command would otherwise compile the package from source (~50 ms).
	$(BIN)/python -m compileall -q aggregator
	touch $(STAMP)

setup: $(STAMP)

## Start the daemon on the bundled config (offline samples): ingest, publish feeds/,
## serve them at the printed URLs; Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/aggregator --config config.toml run

## Ingest the bundled samples once, publish feeds/ and exit.
once: $(STAMP)
	$(BIN)/aggregator --config config.toml run --once

## Install test tools and run the whole test suite.
test: $(STAMP)
	bash scripts/install-test-tools.sh
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) aggregator.db aggregator.db-wal aggregator.db-shm feeds/*.atom feeds/*.rss feeds/*.json feeds/*.html feeds/*.opml feeds/articles
