"""The deployment's processes, started exactly as the image and docker-compose start them.

Each runs through bin/run against a scratch database of the current mode (a SQLite file
embedded, a fresh PostgreSQL database in services mode).
"""

import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
from django.db import connection

from tests.app_role import active_role
from tests.processes import ROOT, bare_env, free_port, project_env, run, stop, wait_until


@pytest.fixture
def scratch_database_url(tmp_path):
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    if active_role():
        pytest.skip("needs the tables' owner: creates a database and migrates it")
    settings = connection.settings_dict
    name = f"inventory_scratch_{uuid.uuid4().hex[:10]}"
    server = psycopg2.connect(
        dbname="postgres",
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"],
    )
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
            f"{settings['PORT'] or 5432}/{name}"
        )
    finally:
        with server.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.close()


@pytest.fixture
def deployment_env(scratch_database_url, tmp_path):
    """Production-like settings on the scratch database, migrated by bin/run."""
    env = project_env(
        DATABASE_URL=scratch_database_url,
        DEBUG="false",
        SECRET_KEY="entrypoint-test-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    migrated = run(["bin/run", "migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    return env


@pytest.fixture
def start(tmp_path):
    """Start a long-running bin/run command; stopped (whole process group) at teardown."""
    processes = []

    def start_process(args, env):
        log = open(tmp_path / f"{args[1]}.log", "w+")
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.append((process, log))
        return process, log

    yield start_process
    for process, log in processes:
        stop(process)
        log.close()


def serving(start, command: str, env: dict[str, str]):
    """``bin/run <command>`` (``web``, ``events``) started, once it answers the
    container's health check (``bin/run ping-web``); (the process, its log)."""
    process, log = start(["bin/run", command], env)
    assert wait_until(lambda: run(["bin/run", "ping-web"], env).returncode == 0, timeout=30), read(
        log
    )
    return process, log


def read(log) -> str:
    """What the child wrote so far, through a file object of our own: seeking the one the
    child writes through would move where its next line lands (over the first ones)."""
    return Path(log.name).read_text()


def test_migrate_leaves_nothing_unapplied(deployment_env):
    check = run(["python", "manage.py", "migrate", "--check"], deployment_env)

    assert check.returncode == 0, check.stdout + check.stderr


def test_web_serves_health_admin_and_static_files_with_debug_off(deployment_env, start):
    collected = run(["bin/run", "collectstatic"], deployment_env)
    assert collected.returncode == 0, collected.stderr
    port = str(free_port())
    env = {**deployment_env, "PORT": port, "WEB_CONCURRENCY": "2"}

    process, log = serving(start, "web", env)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert (response.status, json.load(response)) == (200, {"status": "ok"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as response:
        page = response.read().decode()
        assert response.status == 200
    stylesheet = page.split('href="/static/admin/css/base')[1].split('"')[0]
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/static/admin/css/base{stylesheet}", timeout=5
    ) as response:
        assert response.status == 200
    assert "Booting worker" in read(log)
    assert process.poll() is None


def test_web_with_debug_on_serves_static_files_from_the_apps_without_collectstatic(
    deployment_env, start
):
    """A developer's `bin/run web` (the services mode with DEBUG on): the admin's styles
    and the store dashboard's script, which the dashboard needs to stay current."""
    port = str(free_port())
    env = {**deployment_env, "DEBUG": "true", "PORT": port, "WEB_CONCURRENCY": "1"}

    process, log = serving(start, "web", env)
    for path in ("/static/admin/css/base.css", "/static/stock/store_dashboard.js"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            assert response.status == 200, path
    assert not Path(env["STATIC_ROOT"]).exists()  # nothing was collected
    assert process.poll() is None


def test_web_writes_every_line_as_json_and_names_the_request_in_its_own_and_gunicorns(
    deployment_env, start
):
    port = str(free_port())
    env = {**deployment_env, "PORT": port, "WEB_CONCURRENCY": "1"}  # LOG_FORMAT: json by default
    process, log = serving(start, "web", env)

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/products/", headers={"X-Request-ID": "web-logs-1"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)

    assert refused.value.code == 401

    def lines() -> list[dict]:
        """Each whole line written so far, parsed as JSON (which fails on any other)."""
        text = read(log)
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    def named() -> list[dict]:
        return [line for line in lines() if line.get("request_id") == "web-logs-1"]

    # gunicorn writes its access line after the answer has gone.
    assert wait_until(lambda: len(named()) == 2, timeout=15), read(log)
    assert [(line["logger"], line["event"]) for line in named()] == [
        ("django.request", "Unauthorized: /api/v1/products/"),
        ("gunicorn.access", "request"),
    ], read(log)
    access = named()[1]
    assert (access["method"], access["path"], access["status"], access["user"]) == (
        "GET",
        "/api/v1/products/",
        401,
        None,
    )
    assert any(line["event"].startswith("Booting worker") for line in lines())


def test_events_serves_health_and_refuses_a_stream_without_credentials(deployment_env, start):
    """``bin/run events`` (uvicorn) answers the container's health check, and the stream
    path is its to answer: 401 as JSON, in either mode."""
    port = str(free_port())
    env = {**deployment_env, "PORT": port}
    process, log = serving(start, "events", env)

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/v1/stores/berlin-01/events/stream/", timeout=5
        )

    assert refused.value.code == 401
    assert json.loads(refused.value.read())["code"] == "not_authenticated"
    assert process.poll() is None


@pytest.mark.services
def test_a_worker_answers_a_ping_through_the_broker(deployment_env, start):
    name = f"entrypoint-test-{uuid.uuid4().hex[:8]}@%h"
    process, log = start(["bin/run", "worker", "--hostname", name], deployment_env)

    node = name.replace("%h", os.uname().nodename)
    answered = wait_until(
        lambda: (
            run(["bin/run", "ping-worker", "--destination", node], deployment_env).returncode == 0
        ),
        timeout=60,
        interval=1,
    )

    assert answered, read(log)
    assert process.poll() is None


@pytest.mark.services
def test_beat_starts_with_the_database_scheduler(deployment_env, start):
    process, log = start(["bin/run", "beat"], deployment_env)

    assert wait_until(lambda: "DatabaseScheduler" in read(log), timeout=30), read(log)
    assert process.poll() is None


@pytest.mark.parametrize("command", ["migrate", "web", "events", "worker", "beat"])
def test_every_process_refuses_to_start_with_nothing_set_naming_secret_key(command, tmp_path):
    """DEBUG is off unless set, and with it off there is no development key to fall back
    on: a deployment that forgot SECRET_KEY stops instead of signing with a public key."""
    env = bare_env(PORT=str(free_port()), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))

    result = run(["bin/run", command], env, timeout=60)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set." in result.stdout + result.stderr


@pytest.fixture
def app_role_env(scratch_database_url):
    """The production shape: migrate connects as the owner (DATABASE_OWNER_URL), the
    app as its own role with a password (DATABASE_URL). The role is dropped at the end."""
    owner = urlsplit(scratch_database_url)
    database = owner.path.lstrip("/")
    role, password = f"{database}_app", secrets.token_urlsafe(16)
    yield project_env(
        DATABASE_OWNER_URL=scratch_database_url,
        DATABASE_URL=f"postgres://{role}:{password}@{owner.hostname}:{owner.port}/{database}",
        DATABASE_APP_ROLE=role,
        DATABASE_APP_PASSWORD=password,
    )
    server = psycopg2.connect(scratch_database_url)
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{role}"')  # its grants, here and on the database
        cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
    server.close()


WRITE_AS_THE_APP = """
from django.db import connection
from catalog.models import Product
from stock.services import stock_receive
from stores.models import Store
store = Store.objects.create(code="berlin-01", name="Berlin")
product = Product.objects.create(sku="TEE", name="T-shirt", price=10)
stock_receive(store=store, product=product, quantity=3)
with connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    print(cursor.fetchone()[0])
"""


@pytest.mark.postgresql("database roles are PostgreSQL's")
def test_migrate_grants_the_app_role_which_writes_stock_but_only_the_owner_prunes(app_role_env):
    role = app_role_env["DATABASE_APP_ROLE"]

    migrated = run(["bin/run", "migrate"], app_role_env)
    again = run(["bin/run", "migrate"], app_role_env)
    wrote = run(["python", "manage.py", "shell", "-v", "0", "-c", WRITE_AS_THE_APP], app_role_env)
    verified = run(["python", "manage.py", "verify_audit_chain"], app_role_env)
    pruned_as_app = run(["python", "manage.py", "prune_audit", "--older-than", "1h"], app_role_env)
    pruned_as_owner = run(["bin/run", "owner", "prune_audit", "--older-than", "1h"], app_role_env)
    events_as_app = run(["python", "manage.py", "prune_events"], app_role_env)
    events_as_owner = run(["bin/run", "owner", "prune_events"], app_role_env)

    assert migrated.returncode == 0, migrated.stderr
    assert f"Granted to {role} in " in migrated.stdout
    granted = migrated.stdout[migrated.stdout.index("Granted to") :]
    assert (again.returncode, again.stdout[again.stdout.index("Granted to") :]) == (0, granted)
    assert (wrote.returncode, wrote.stdout) == (0, f"{role}\n"), wrote.stderr
    assert verified.stdout == "Audit chain intact: 1 events verified; 0 waiting to be relayed.\n"
    assert pruned_as_app.returncode == 1
    assert "permission denied for table audit_event" in pruned_as_app.stderr
    assert pruned_as_owner.returncode == 0, pruned_as_owner.stderr
    assert pruned_as_owner.stdout == "Pruned 0 audit events older than 1h.\n"
    assert events_as_app.returncode == 1
    assert "run it as the tables' owner, bin/run owner prune_events" in events_as_app.stderr
    assert (events_as_owner.returncode, events_as_owner.stdout) == (
        0,
        "Pruned 0 stock events older than 30 days.\n"
        "Pruned 0 webhook deliveries finished more than 30 days ago, with their 0 attempts.\n",
    ), events_as_owner.stderr
