# Two commands: `make run` for the demo, `make test` for the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHOP_PORT ?= 5000
SANDBOX_PORT ?= 5001

.PHONY: run example sandbox test lint format screenshots bench bench-postgres clean messages translations

# The virtual environment, rebuilt when the pinned requirements change.
$(VENV)/installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# A private .env with a random SECRET_KEY, made once from the example. Mode
# 0600 from the start (umask): its SECRET_KEY can sign a staff session.
.env:
	umask 077 && sed "s/^SECRET_KEY=.*/SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex())')/" .env.example > .env

# The demo's staff account gets a new random password on every run: no
# password is fixed anywhere.
run: $(VENV)/installed .env
	$(BIN)/flask --app app init-db
	@password=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))'); \
	echo "$$password" | $(BIN)/flask --app app create-staff demo@example.com >/dev/null && \
	echo "Shop:    http://127.0.0.1:$(SHOP_PORT)/" && \
	echo "Back office: http://127.0.0.1:$(SHOP_PORT)/admin/ as demo@example.com / $$password"
	@echo "Sandbox: http://127.0.0.1:$(SANDBOX_PORT)/ (Khalti's payment pages, offline)"
	SANDBOX_SHOP_URL=http://127.0.0.1:$(SHOP_PORT)/ \
		$(BIN)/flask --app sandbox run --port $(SANDBOX_PORT) & \
	trap 'kill $$!' EXIT INT TERM; \
	SANDBOX_PORT=$(SANDBOX_PORT) $(BIN)/flask --app app run --port $(SHOP_PORT)

# examples/minimal.py (docs/tutorial.md) against the sandbox. Both get the same
# made-up key, so the example never reaches Khalti even if .env holds a real one.
EXAMPLE_ENV := KHALTI_SECRET_KEY=example-sandbox-key DATABASE_URL=sqlite:///payments.db

example: $(VENV)/installed .env
	@echo "Example: http://127.0.0.1:$(SHOP_PORT)/"
	@echo "Sandbox: http://127.0.0.1:$(SANDBOX_PORT)/ (Khalti's payment pages, offline)"
	$(EXAMPLE_ENV) SANDBOX_SHOP_URL=http://127.0.0.1:$(SHOP_PORT)/ \
		$(BIN)/flask --app sandbox run --port $(SANDBOX_PORT) & \
	trap 'kill $$!' EXIT INT TERM; \
	$(EXAMPLE_ENV) KHALTI_BASE_URL=http://127.0.0.1:$(SANDBOX_PORT)/api/v2/ \
	SITE_URL=http://127.0.0.1:$(SHOP_PORT) PYTHONPATH=$(CURDIR) $(BIN)/flask --app examples/minimal.py run --port $(SHOP_PORT)

# Only the sandbox, for your own app to talk to (docs/tutorial.md). An empty
# KHALTI_SECRET_KEY, which .env cannot override, makes it accept any key.
sandbox: $(VENV)/installed
	KHALTI_SECRET_KEY= $(BIN)/flask --app sandbox run --port $(SANDBOX_PORT)

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
# an empty database given as `make bench DATABASE_URL=...`; with
# COMPARE=DIR, another checkout measured beside this one; `make
# bench-postgres` runs it on a throwaway PostgreSQL cluster (fsync on).
bench: $(VENV)/installed
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python bench/run.py $(if $(DATABASE_URL),--database-url '$(DATABASE_URL)') \
		$(if $(COMPARE),--compare-with '$(COMPARE)')

bench-postgres: $(VENV)/installed
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	PG_FSYNC=on REQUIRE_POSTGRES=1 scripts/with-postgres \
		sh -c '$(BIN)/python bench/run.py --database-url "$$TEST_DATABASE_URL"'

# The Nepali catalog (docs/translating.md). `make messages` after
# changing the shop's words; translate what it marks new or fuzzy in
# translations/ne/LC_MESSAGES/messages.po; `make translations` compiles the
# .mo the shop reads (committed, so a fresh checkout runs without this step).
messages: $(VENV)/installed
	$(BIN)/pybabel extract -F babel.cfg -k _l --no-location --sort-output \
		-o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations \
		--width 100

translations: $(VENV)/installed
	$(BIN)/pybabel compile -d translations --statistics

lint: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
