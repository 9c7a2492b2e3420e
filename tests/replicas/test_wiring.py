"""Replicas are opt-in: without DATABASE_REPLICA_URLS nothing of them is installed, and a
request pays nothing for them; with it, the router and the middleware are in place."""

import json
import sys

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stock.models import StockLevel
from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client
from tests.factories import ProductFactory, StoreFactory, member
from tests.processes import bare_env, run

PRINT_WIRING = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "routers": settings.DATABASE_ROUTERS,
    "middleware": settings.MIDDLEWARE,
    "replicas": settings.REPLICA_DATABASES,
    **{
        alias: {
            key: settings.DATABASES[alias][key]
            for key in ("HOST", "PORT", "NAME", "OPTIONS", "TEST")
        } if alias in settings.DATABASES else None
        for alias in ("replica_1", "replica_2")
    },
}, default=lambda value: f"{value.__module__}.{value.__qualname__}"))
"""
MIDDLEWARE = "inventory_site.replicas.middleware.ReadConsistencyMiddleware"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


def wiring(**variables) -> dict:
    env = bare_env(DJANGO_SETTINGS_MODULE="inventory_site.settings", DEBUG="true", **variables)
    result = run([sys.executable, "-c", PRINT_WIRING], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_replica_urls_no_router_and_no_middleware_are_installed():
    wired = wiring(DATABASE_URL="postgres://postgres@127.0.0.1:5432/inventory")
    assert (wired["routers"], wired["replicas"], wired["replica_1"]) == ([], [], None)
    assert MIDDLEWARE not in wired["middleware"]


def test_replica_urls_install_the_router_and_the_middleware_after_the_sessions():
    wired = wiring(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/inventory",
        DATABASE_REPLICA_URLS="postgres://postgres@10.0.0.7:5432/inventory",
    )
    assert wired["routers"] == ["inventory_site.replicas.routing.ReplicaRouter"]
    assert wired["replicas"] == ["replica_1"]
    assert wired["replica_1"]["HOST"] == "10.0.0.7"
    assert wired["replica_1"]["TEST"]["MIRROR"] == "default"
    middleware = wired["middleware"]
    assert middleware.index(MIDDLEWARE) == middleware.index(SESSIONS) + 1


def test_options_in_a_replica_url_are_kept_and_win_over_the_defaults():
    wired = wiring(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/inventory",
        DATABASE_REPLICA_URLS=",".join(
            [
                "postgres://postgres@10.0.0.7:5432/inventory?sslmode=require",
                "postgres://postgres@10.0.0.8:5432/inventory?connect_timeout=3",
            ]
        ),
        REPLICA_CONNECT_TIMEOUT="2",
    )
    defaults = {
        "connect_timeout": 2,
        "options": "-c statement_timeout=5000",
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 6000,
        "cursor_factory": "inventory_site.replicas.deadline.BoundedCursor",
    }
    assert wired["replica_1"]["OPTIONS"] == defaults | {"sslmode": "require"}
    assert wired["replica_2"]["OPTIONS"] == defaults | {"connect_timeout": 3}


SHOW_REPLICA_CONNECTION = """
import json, django
from django.db import connections
django.setup()
replica = connections["replica_1"]
with replica.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    (statement_timeout,) = cursor.fetchone()
parameters = replica.connection.get_dsn_parameters()
print(json.dumps({
    "statement_timeout": statement_timeout,
    "tcp": {key: parameters.get(key) for key in (
        "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
        "tcp_user_timeout",
    )},
    "cursor": type(replica.connection.cursor()).__name__,
}))
"""


@pytest.mark.postgresql("the replica is a PostgreSQL standby")
def test_a_replica_connection_carries_its_timeouts_to_libpq_and_the_server(replica):
    env = bare_env(
        DJANGO_SETTINGS_MODULE="inventory_site.settings",
        DEBUG="true",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/inventory",
        DATABASE_REPLICA_URLS=replica.url(),
        REPLICA_STATEMENT_TIMEOUT_MS="1500",
    )
    result = run([sys.executable, "-c", SHOW_REPLICA_CONNECTION], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "statement_timeout": "1500ms",
        "tcp": {
            "keepalives": "1",
            "keepalives_idle": "5",
            "keepalives_interval": "2",
            "keepalives_count": "3",
            "tcp_user_timeout": "2500",
        },
        "cursor": "BoundedCursor",
    }


@pytest.mark.django_db
def test_without_replicas_a_purchase_and_a_list_carry_no_replica_headers_and_no_extra_query():
    """This process runs without replicas (the suite's settings): the answers are as they
    were, and a purchase sends its guarded statement, nothing about WAL positions."""
    assert settings.REPLICA_DATABASES == [] and settings.DATABASE_ROUTERS == []
    store, product = StoreFactory(code="plain-01"), ProductFactory(sku="PLAIN")
    stock_receive(store=store, product=product, quantity=5)
    client = api_client(member("plain-clerk", store, Role.CLERK))
    client.get("/api/v1/stores/plain-01/stock/PLAIN/")  # the lookups are warm

    with CaptureQueriesContext(connection) as queries:
        sold = client.post(
            "/api/v1/stores/plain-01/stock/PLAIN/purchase/", {"quantity": 1}, format="json"
        )
    listed = client.get("/api/v1/stores/plain-01/movements/")

    assert (sold.status_code, listed.status_code) == (200, 200)
    for answer in (sold, listed):
        assert "X-Consistency-Token" not in answer and "X-Served-By" not in answer
    assert not any("wal_lsn" in query["sql"] for query in queries.captured_queries)
    assert StockLevel.objects.get(store=store, product=product).on_hand == 4
