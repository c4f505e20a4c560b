# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck check clean toolchains bench bench-tools bench-profile

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/partner-gateway serve --demo --with-worker

# The example clients' toolchains, from Debian's packages when missing (the tests fail, never
# skip, without them): Go, Node.js, Java, curl and openssl.
toolchains:
	@missing=""; \
	command -v go >/dev/null || missing="$$missing golang-go"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: $(STAMP) toolchains
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

# The benchmarks' tools: wrk from Debian's packages when missing (as `toolchains` does), and
# py-spy from the `bench` extra of pyproject.toml.
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@rm -f $(VENV)/.bench-*
	@touch $@

bench-tools: $(BENCH_STAMP)
	@if ! command -v wrk >/dev/null; then \
	  echo "installing: wrk"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; \
	fi

# Benchmarks are measured here, never asserted in a test (docs/performance.md).
bench: bench-tools
	$(BIN)/python -m bench.run
	$(BIN)/python bench/batch_memory.py
	$(BIN)/python bench/archive_restore.py

# Where the gateway's time goes under 1-entry deletes (py-spy): docs/performance.md.
bench-profile: bench-tools
	$(BIN)/python -m bench.run --profile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache
