# The two set-up commands: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint bench bench-audit bench-events bench-flash bench-import bench-layers bench-replicas bench-scale install migrate demo check-compose clean

# The port `make run` serves on: `make run PORT=8001` or `PORT=8001 make run`.
PORT ?= 8000

# `make run` first binds the port as runserver will (with the system's python3: the
# virtualenv may not exist yet), so that a second `make run` while one is serving stops
# here, before it installs, migrates or seeds anything.
define PORT_CHECK
import socket, sys
port = sys.argv[1]
if not port.isdigit() or not 0 < int(port) < 65536:
    sys.exit(f"PORT={port!r} is not a port number (1-65535).")
probe = socket.socket()
probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    probe.bind(("127.0.0.1", int(port)))
except OSError as error:
    sys.exit(
        f"Port {port} is taken ({error.strerror}): another server, perhaps an earlier "
        f"`make run`, listens on 127.0.0.1:{port}. Stop it, or choose another port: "
        f"make run PORT={int(port) % 65535 + 1}"
    )
endef
export PORT_CHECK

# The development server runs with DEBUG on (and so the development SECRET_KEY); the
# settings default to DEBUG off, where a process without SECRET_KEY refuses to start.
run migrate demo: export DEBUG ?= true

## Install, migrate, load the demo data and serve http://127.0.0.1:8000 (PORT=8001: another port)
run:
	@$(PYTHON) -c "$$PORT_CHECK" "$(PORT)"
	@$(MAKE) --no-print-directory migrate demo
	@echo "Open http://127.0.0.1:$(PORT)/ : the home page links each login's stores."
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# `make test` runs one pytest-xdist worker per core, at most 8 (each takes Redis
# databases of its own, of redis-server's 16); TEST_WORKERS=0 runs the suite in one
# process (for a debugger or --pdb).
TEST_WORKERS ?= auto

## Run the test suite (pass pytest options with ARGS="-k transfer"; TEST_WORKERS=0: one process)
test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses=8 $(ARGS)

## Lint and check formatting (ruff, configured in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## The request path over HTTP against issue 12's targets, the audit benchmark, list reads with and without a replica, a flash sale with the gate on and off, then stock writes with webhooks and live streams (see bench/)
bench: install
	$(PY) bench/http_bench.py
	$(PY) bench/replica_bench.py
	$(PY) bench/flash_bench.py
	$(PY) bench/events_bench.py
	BENCH_EVENTS_LISTENER_CPUS=1 $(PY) bench/events_bench.py
	$(PY) bench/events_numbering.py

## Stock writes with 0, 1 and 10 webhook subscriptions and 100 open streams, and the delay to each (see bench/)
bench-events: install
	$(PY) bench/events_bench.py
	BENCH_EVENTS_LISTENER_CPUS=1 $(PY) bench/events_bench.py
	$(PY) bench/events_numbering.py

## A flash sale of 10,000 buyers for 500 units with the flash-sale gate on and off (see bench/)
bench-flash: install
	$(PY) bench/flash_bench.py

## List reads with a streaming replica and without, and the consistency token's cost (see bench/)
bench-replicas: install
	$(PY) bench/replica_bench.py

## What each middleware, hook and gunicorn worker setup costs a request (see bench/)
bench-layers: install
	$(PY) bench/request_layers.py

## Audit benchmark: purchase throughput with the audit log on and off (see bench/)
bench-audit: install
	$(PY) bench/audit_bench.py

## import_stock of a 100,000-row CSV on PostgreSQL: rows per second (see bench/)
bench-import: install
	$(PY) bench/import_bench.py

## Bulk jobs, a stream of changes and the read paths at 5,000,000 levels (see bench/)
bench-scale: install
	$(PY) bench/scale_bench.py

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

## Validate docker-compose.yml without a Docker engine: the default services, and with
## the optional `replica` profile
check-compose:
	SECRET_KEY=compose-check docker-compose -f docker-compose.yml config -q
	SECRET_KEY=compose-check docker-compose -f docker-compose.yml --profile replica config -q

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* staticfiles .pytest_cache .hypothesis
