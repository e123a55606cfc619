# Two commands: `make run` (the product) and `make test` (the suite). Both need only python3 (3.11+) and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-smoke clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) scripts/run.py

test: $(STAMP)
	@if command -v node >/dev/null 2>&1; then node --test --test-reporter=dot static/inbox/tests/; \
	else echo "SKIPPED: the browser's state tests need Node.js 20+ (apt-get install nodejs): node --test static/inbox/tests/"; fi
	mkdir -p .run
	$(PY) scripts/embedded.py -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run

# Benchmarks (bench/README.md): needs wrk; PostgreSQL/Redis from DATABASE_URL/REDIS_URL (a fresh <db>_bench).
bench: $(STAMP)
	$(PY) bench/run.py

bench-smoke: $(STAMP)
	$(PY) bench/run.py --smoke

clean:
	rm -rf .run staticfiles .pytest_cache
