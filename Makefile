# The two set-up commands: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint bench bench-audit install migrate demo check-compose clean

# The development server runs with DEBUG on (and so the development SECRET_KEY); the
# settings default to DEBUG off, where a process without SECRET_KEY refuses to start.
run migrate demo: export DEBUG ?= true

## Install, migrate, load the demo data and serve http://127.0.0.1:8000
run: install migrate demo
	$(PY) manage.py runserver 127.0.0.1:8000

## Run the test suite (pass pytest options with ARGS="-k transfer")
test: install
	$(PY) -m pytest $(ARGS)

## Lint and check formatting (ruff, configured in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Cache benchmark: gunicorn on PostgreSQL and Redis, wrk as the load (see bench/)
bench: install
	$(PY) bench/cache_bench.py

## Audit benchmark: purchase throughput with the audit log on and off (see bench/)
bench-audit: install
	$(PY) bench/audit_bench.py

install: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

migrate: install
	$(PY) manage.py migrate --noinput

demo: install
	$(PY) manage.py seed_demo

## Validate docker-compose.yml without a Docker engine
check-compose:
	SECRET_KEY=compose-check docker-compose -f docker-compose.yml config -q

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* staticfiles .pytest_cache .hypothesis
