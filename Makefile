# Provider Center. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The install and proto steps live in deploy/build.sh, which the container image runs too.
BUILD := deploy/build.sh
PY := .venv/bin/python
PROTOS := $(shell find proto -name '*.proto')
GENERATED := $(patsubst proto/%.proto,%_pb2.py,$(PROTOS))

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.venv/.synced: pyproject.toml uv.lock $(BUILD)
	$(BUILD) install dev
	@touch $@

.PHONY: install
install: .venv/.synced ## create the virtual environment from the lock file

$(GENERATED): $(PROTOS) .venv/.synced
	$(BUILD) proto
	@touch $(GENERATED)

.PHONY: proto
proto: $(GENERATED) ## generate the gRPC code from proto/

.PHONY: run
run: proto ## start the whole system on embedded defaults (SQLite, embedded Redis, mail to var/mail)
	.venv/bin/providerctl run

.PHONY: lint
lint: proto ## ruff over the code
	.venv/bin/ruff check services tests deploy bench

.PHONY: test-unit
test-unit: proto ## the fast loop: unit tests only
	$(PY) -m pytest -q tests/unit

.PHONY: test
test: proto lint ## everything CI runs: unit, integration, end-to-end (browser)
	$(PY) -m pytest -q -p no:cacheprovider tests

.PHONY: bench
bench: proto ## benchmarks (not part of CI): auth vs the peer; portal and reports too with BENCH_DATABASE_URL
	$(PY) -m bench
	@if [ -n "$$BENCH_DATABASE_URL" ]; then \
		$(MAKE) --no-print-directory -k bench-portal bench-reports; \
	else \
		echo "bench-portal and bench-reports skipped: they need PostgreSQL, e.g."; \
		echo "  BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres make bench"; \
	fi

.PHONY: bench-portal
bench-portal: proto ## portal pages and charges over 1,000,000 transactions (BENCH_DATABASE_URL)
	$(PY) -m bench.portal

.PHONY: bench-reports
bench-reports: proto ## reports over 1,000,000 transactions (BENCH_DATABASE_URL)
	$(PY) -m bench.reports

.PHONY: clean
clean: ## remove local state (databases, mail, embedded Redis) and generated code
	rm -rf var providercenter .pytest_cache
