# Two commands: `make run` for the demo, `make test` for the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHOP_PORT ?= 5000
SANDBOX_PORT ?= 5001

.PHONY: run test lint format screenshots bench bench-postgres clean

# The virtual environment, rebuilt when the pinned requirements change.
$(VENV)/installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# A private .env with a random SECRET_KEY, made once from the example.
.env:
	sed "s/^SECRET_KEY=.*/SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex())')/" .env.example > .env

run: $(VENV)/installed .env
	$(BIN)/flask --app app init-db
	@echo "Shop:    http://127.0.0.1:$(SHOP_PORT)/"
	@echo "Sandbox: http://127.0.0.1:$(SANDBOX_PORT)/ (Khalti's payment pages, offline)"
	$(BIN)/flask --app sandbox run --port $(SANDBOX_PORT) & \
	trap 'kill $$!' EXIT INT TERM; \
	$(BIN)/flask --app app run --port $(SHOP_PORT)

# The suite on SQLite, then again on a throwaway PostgreSQL cluster (skipped,
# with a message, when PostgreSQL is not installed).
test: $(VENV)/installed
	$(BIN)/pytest
	scripts/with-postgres $(BIN)/pytest

# The README's pictures, taken by the browser tests along a real purchase.
screenshots: $(VENV)/installed
	SCREENSHOT_DIR=$(CURDIR)/docs/img $(BIN)/pytest -q tests/e2e/test_browser_screenshots.py

# Load on loopback for about 3 minutes, then a report; not part of `make test`.
# wrk comes from Debian's packages. See docs/BENCHMARKS.md. On SQLite, or on
# an empty database given as `make bench DATABASE_URL=...`; `make
# bench-postgres` runs it on a throwaway PostgreSQL cluster (fsync on).
bench: $(VENV)/installed
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python bench/run.py $(if $(DATABASE_URL),--database-url '$(DATABASE_URL)')

bench-postgres: $(VENV)/installed
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	PG_FSYNC=on REQUIRE_POSTGRES=1 scripts/with-postgres \
		sh -c '$(BIN)/python bench/run.py --database-url "$$TEST_DATABASE_URL"'

lint: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
