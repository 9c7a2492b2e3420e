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
}))
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
    assert wired["replica_1"]["OPTIONS"] == {"connect_timeout": 2, "sslmode": "require"}
    assert wired["replica_2"]["OPTIONS"] == {"connect_timeout": 3}


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
