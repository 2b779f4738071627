# The two commands a new machine needs: `make demo` and `make test` (both set up first).
SHELL := /bin/bash
PYTEST ?= .venv/bin/python -m pytest

.PHONY: setup setup-test setup-bench demo test test-unit test-integration bench

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

setup-bench:
	@scripts/setup.sh --bench

demo: setup
	@scripts/demo.sh

test: setup-test
	HOIST_TEST_DEBOOTSTRAP=1 $(PYTEST) -q -p no:cacheprovider tests/unit tests/integration

test-unit: setup
	$(PYTEST) -q -p no:cacheprovider tests/unit

test-integration: setup-test
	$(PYTEST) -q -p no:cacheprovider tests/integration

bench: setup-bench
	.venv/bin/python bench/run.py
	.venv/bin/python bench/push_pull.py
	.venv/bin/python bench/registry_throughput.py
	.venv/bin/python bench/runtime_cycle.py
	.venv/bin/python bench/api_cycle.py
	.venv/bin/python bench/monitor_memory.py 100
