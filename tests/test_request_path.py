"""What a request costs before its own work (DESIGN.md, "The request path"): a cache-hit
stock read makes no SQL query and at most two Redis round trips with rate limiting on (one
for the rate limits and the lookup generations, one for the cached level), for a store
member and for staff alike; a purchase adds only its own statement."""

import pytest
from django.db import close_old_connections, connection, connections
from django.test.utils import CaptureQueriesContext

from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    StaffFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = pytest.mark.services("counts round trips to the real Redis")

LEVEL = "/api/v1/stores/berlin-01/stock/TEE/"


@pytest.fixture(autouse=True)
def rate_limits_on(settings):
    settings.RATELIMIT_ENABLE = True
    settings.API_RATE_PER_USER = "100000/m"
    settings.API_RATE_PER_IP = "100000/m"


@pytest.fixture
def berlin(db):
    store = StoreFactory(code="berlin-01")
    stock_receive(store=store, product=ProductFactory(sku="TEE"), quantity=5)
    return store


def clerk_of(store):
    user = UserFactory(username="clerk")
    MembershipFactory(user=user, store=store, role=Role.CLERK)
    return user


def staff_viewer(store):
    return StaffFactory(username="auditor", permissions=["stock.view_stocklevel"])


@pytest.mark.parametrize("who", [clerk_of, staff_viewer], ids=["member", "staff"])
def test_a_cache_hit_makes_no_query_and_one_redis_round_trip(
    berlin, who, redis_round_trips, django_assert_num_queries
):
    client = api_client(who(berlin))
    assert client.get(LEVEL).status_code == 200  # fills the lookups and the level

    with django_assert_num_queries(0), redis_round_trips() as trips:
        response = client.get(LEVEL)

    assert response.status_code == 200, response.content
    assert response["X-Cache"] == "HIT"
    assert response.json()["available"] == 5
    assert len(trips) == 1, trips.commands()  # rate limits, generations and the level


def test_a_cold_process_finds_the_lookups_in_redis(
    berlin, redis_round_trips, django_assert_max_num_queries
):
    """The same read after the process forgot its lookups (another worker, say) finds
    them in Redis: still no query."""
    from inventory_site.lookup_cache import lookups

    client = api_client(clerk_of(berlin))
    assert client.get(LEVEL).status_code == 200
    lookups.clear_local()

    with django_assert_max_num_queries(0), redis_round_trips() as trips:
        assert client.get(LEVEL).status_code == 200

    # gate + the user's rate limit (the token was not in memory) + token, role and
    # product from Redis + the level
    assert len(trips) <= 6, trips.commands()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql("counts PostgreSQL's connection health check")
def test_the_connection_health_check_runs_only_for_requests_that_query(settings, monkeypatch):
    """CONN_HEALTH_CHECKS stays on: it checks a kept connection before its first query in
    a request, so a cache hit, which makes none, never pays for it; a purchase pays one
    round trip for it."""
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"]
    store = StoreFactory(code="berlin-01")
    stock_receive(store=store, product=ProductFactory(sku="TEE"), quantity=5)
    client = api_client(clerk_of(store))
    checks = []
    real_is_usable = type(connections["default"]).is_usable
    monkeypatch.setattr(
        type(connections["default"]),
        "is_usable",
        lambda conn: checks.append(1) or real_is_usable(conn),
    )

    def request(method, path, **kwargs):
        # What Django does when a request starts; the test client skips it.
        close_old_connections()
        checks.clear()
        with CaptureQueriesContext(connection) as queries:
            response = getattr(client, method)(path, **kwargs)
        return response, len(checks), len(queries)

    assert request("get", LEVEL)[0].status_code == 200  # fills the caches
    response, health_checks, queries = request("get", LEVEL)
    assert (response["X-Cache"], health_checks, queries) == ("HIT", 0, 0)

    response, health_checks, queries = request(
        "post", LEVEL + "purchase/", data={"quantity": 1}, format="json"
    )
    assert response.status_code == 200, response.content
    assert health_checks == 1
