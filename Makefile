# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Installs come from uv.lock (every package, transitively, with hashes, for every supported
# Python), so every machine runs what CI ran. uv itself is pinned with hashes in
# requirements-uv.txt and bootstrapped with pip into .tools/.
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_ENV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never
STAMP := $(VENV)/.installed-$(shell cat uv.lock requirements-uv.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck check clean toolchains bench bench-tools bench-profile bench-hotpath lock upgrade fuzz

$(UV): requirements-uv.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --no-deps --require-hashes -r requirements-uv.txt
	@touch $@

# --locked: the install fails, rather than resolving anew, when pyproject.toml changed and
# uv.lock was not refreshed (run `make lock`).
$(STAMP): uv.lock pyproject.toml $(UV)
	$(UV_ENV) $(UV) sync --locked --all-extras --python $(PYTHON) --quiet
	@rm -f $(VENV)/.installed-*
	@touch $@

# After editing the dependencies in pyproject.toml: resolve them into uv.lock, keeping every
# other pin as it is.
lock: $(UV)
	$(UV_ENV) $(UV) lock --python $(PYTHON)

# On purpose only (a dependency's fix or release you want): move every pin to the newest
# release that pyproject.toml's ranges allow, then run `make check` before committing uv.lock.
upgrade: $(UV)
	$(UV_ENV) $(UV) lock --upgrade --python $(PYTHON)

# Against DATABASE_URL only `migrate` changes the schema (serve refuses pending migrations);
# the embedded database is migrated by serve itself.
run: $(STAMP)
	@[ -z "$$DATABASE_URL" ] || $(BIN)/partner-gateway migrate
	$(BIN)/partner-gateway serve --demo --with-worker

# The example clients' toolchains, from Debian's packages when missing (the tests fail, never
# skip, without them): Go, Node.js, Java, curl and openssl; and nginx, which the operations
# walkthrough's test runs as docs/operations.md configures it (on a loopback port).
toolchains:
	@missing=""; \
	command -v go >/dev/null || missing="$$missing golang-go"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx"; \
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

# The benchmarks' tools: wrk from Debian's packages when missing (as `toolchains` does); py-spy
# (the `bench` extra) comes from uv.lock with everything else.
bench-tools: $(STAMP)
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

# The 1-entry hot path alone, in about a minute: requests/s and CPU per request of the gateway
# and of PostgreSQL, beside the floor; BENCH_HOTPATH_SOURCES=old:new compares two checkouts.
bench-hotpath: bench-tools
	$(BIN)/python -m bench.hotpath

# The security testers' fuzz campaign against a real serve started for the run (or
# FUZZ_ARGS="--url URL ..."), 60 s unless FUZZ_ARGS says --duration or --cases: docs/security.md.
fuzz: $(STAMP)
	$(BIN)/python -m fuzz $(FUZZ_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) $(TOOLS) .coverage .pytest_cache .mypy_cache .ruff_cache
