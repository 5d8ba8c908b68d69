# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv from the lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-chaos stop status lint simulate bench bench-atp bench-reservations bench-publish bench-routing clean

$(STAMP): pyproject.toml devtools/pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@# Bytecode is compiled at install: this machine sets PYTHONDONTWRITEBYTECODE, and without
	@# .pyc files every Airflow import costs ~8 s instead of ~3 s.
	UV_COMPILE_BYTECODE=1 $(BIN)/uv pip install --python $(BIN)/python -r requirements.lock
	@# The platform and, beside it, the development tooling (sandboxes, demo, local stack).
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e . -e devtools
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/oms demo

# Test runs keep compiled modules, and pytest's assertion-rewritten ones (the tests and the packages of
# pytest plugins: hypothesis, anyio, xdist), in the gitignored __pycache__ folders. This machine sets
# PYTHONDONTWRITEBYTECODE, under which every run compiled and rewrote them all again: about half of
# the unit tier's collection CPU (docs/benchmarks.md, "The test suite").
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest

# Two pytest-xdist workers, each with its own test cluster, state folder and ports (tests/conftest.py),
# taking whole files, the longest first. TEST_WORKERS=1 runs the suite in one process.
TEST_WORKERS ?= 2
test: install
	$(PYTEST) -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Kills Postgres, the scheduler, a task mid-run and an API worker of a stack of its own under load
# (tests/test_chaos.py): a whole stack and four atp_build dbt builds within one 1,000 s budget. Part of
# `make test`; this target runs it alone.
test-chaos: install
	$(PYTEST) -m chaos tests/test_chaos.py

# The unit tier only (pure logic: no Postgres, no Airflow, no dbt). Tiers are set in tests/conftest.py
# from the fixtures each test uses; the run fails if a unit test pulled in Airflow or dbt. 170 tests in
# ~13 s of CPU from the second run on (the first compiles: ~18 s), plus what the tests that start
# processes and servers wait for them. One process: two xdist workers each collect the whole suite
# (+60 % CPU) and were no faster on the loaded machine (docs/benchmarks.md, "The test suite").
test-fast: install
	$(PYTEST) -m unit -q

stop:
	@if [ -x $(BIN)/oms ]; then $(BIN)/oms down; else echo "nothing to stop (no .venv)"; fi

status: install
	$(BIN)/oms status

# Not a test: a simulated month of trading through the real platform, measured against the
# simulator's ground truth (oversell, undersell, drift, lag) on a stack of its own (.oms/simulate).
# SIM_ARGS="--days 30 --seed 7 --scale S". Figures in bench/results/promise-*.json, docs/promise-accuracy.md.
simulate: install
	$(BIN)/oms simulate $(SIM_ARGS)

# What CI gates (.ci/run): ruff with the AIR rules, and sqlfluff on the dbt models and sql/ (.sqlfluff).
lint: install
	$(BIN)/ruff check dags plugins devtools api tests bench
	$(BIN)/sqlfluff lint dbt/models sql --processes 2 --disable-progress-bar

# Not tests: ATP look-up latency/throughput on a generated 50k-SKU x 102-location catalogue in a
# Postgres cluster of its own (.oms/bench, port 5560), and reservation strategies under contention.
# Uses wrk when installed, else an asyncio load generator. Results in bench/results/.
bench-atp: install
	$(BIN)/python bench/atp_lookup.py $(BENCH_ARGS)

bench-reservations: install
	$(BIN)/python bench/reservations.py --dsn postgresql://oms@127.0.0.1:5560/oms_bench $(BENCH_ARGS)

# Stock out to Magento: ERP API → Magento lag on the running demo stack (`make demo` first), then
# the time to delta-publish ≥ 100k changed source items and the unchanged items re-sent (0).
bench-publish: install
	$(BIN)/python bench/publish_lag.py
	$(BIN)/python bench/publish_100k.py $(BENCH_ARGS)

# Rule routing throughput on a generated 15k-order GCC backlog (≥ 10k releasable), and shipments / shipping cost per
# order against "nearest location with stock, SKU by SKU". No database. bench/results/routing.json.
bench-routing: install
	$(BIN)/python bench/routing.py $(BENCH_ARGS)
# Not tests: the benchmark suite: ingestion vs COPY, ATP full/incremental rebuild, API,
# publish, routing, memory at scales S and M (BENCH_ARGS="--scales S,M,L --freshness ..."), on a
# Postgres cluster of its own (.oms/bench-suite, port 5666). Table in bench/results/bench-latest.json.
bench: install
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

# requirements.lock: everything `make install` puts in .venv (runtime + test + dev groups);
# requirements-runtime.lock: the production image's set, the same versions without the test/dev groups.
lock:
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml -c requirements.lock --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o requirements-runtime.lock

clean: stop
	rm -rf $(VENV) .oms
