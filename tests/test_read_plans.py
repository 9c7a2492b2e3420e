"""The read paths that must keep their cost at 10,000 stores x 500 products (issue 14):
every statement they send that reads the stock levels, the ledger or the audit log is
planned again by PostgreSQL with sequential scans and sorts priced out, and no plan may
hold one (``conftest.ReadPlan.problems``): an index serves each, in the order the page
needs. The main statement of each list is also held to the index it is built for, as
another index could serve it with a filter, reading every row of the store to find a
page."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from audit.services import audit_relay_pending
from events.selectors import events_older_than
from events.services import PRUNE_BATCH_SIZE
from inventory_site.query_plans import LARGE_TABLES
from stock.models import Movement, StockLevel
from stock.selectors import stock_levels_with_ledger_drift
from stock.services import (
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_seed_levels,
    stock_set_reorder_point,
)
from stores.models import Role
from tests.api import api_client
from tests.app_role import as_owner
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    StockEventFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = pytest.mark.postgresql("the plans are PostgreSQL's")

BERLIN = "/api/v1/stores/berlin-01"


@pytest.fixture
def shop(db):
    """Two stores with three products each: received, one sold, one adjusted, one low;
    and, shaped like the large data set, 60 more stores stocking those and 40 other
    products (2,580 levels, seeded set-based), so that a product's levels are many and a
    store's few, as at 10,000 stores. The audit events relayed, the tables analyzed."""
    berlin, hamburg = StoreFactory(code="berlin-01"), StoreFactory(code="hamburg-01")
    products = [ProductFactory(sku=sku) for sku in ("TEE", "MUG", "CAP")]
    for store in (berlin, hamburg):
        for product in products:
            stock_receive(store=store, product=product, quantity=10)
        stock_purchase(store=store, product=products[0], quantity=2)
        stock_adjust(store=store, product=products[1], delta=-1, reason="damaged")
        stock_set_reorder_point(store=store, product=products[2], reorder_point=20)
    others = [StoreFactory() for _ in range(60)]
    stock_seed_levels(stores=others, products=[*products, *(ProductFactory() for _ in range(40))])
    for store in (berlin, hamburg, *others):  # the event log, as the changes wrote it
        StockEventFactory.log(store, 20, product=products[0])
    audit_relay_pending()
    analyze()
    return berlin


def analyze():
    """Statistics of these rows: the planner must not choose by what earlier tests left
    in the tables' statistics (their rows are gone, their numbers stay until ANALYZE).
    ANALYZE is the owner's."""
    with as_owner(), connection.cursor() as cursor:
        for table in LARGE_TABLES:
            cursor.execute(f"ANALYZE {table}")


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def manager(shop):
    user = UserFactory(username="manager")
    MembershipFactory(user=user, store=shop, role=Role.MANAGER)
    return user


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_served_by_indexes(plans, *, main_index=None, whole_tables=False):
    """No plan has a problem; one reads ``main_index`` (or one of several that fit)."""
    assert plans, "no statement read a large table"
    for read in plans:
        assert read.problems(whole_tables=whole_tables) == [], read.sql
    if main_index:
        fitting = {main_index} if isinstance(main_index, str) else set(main_index)
        used = set().union(*(read.indexes for read in plans))
        assert fitting & used, used


@pytest.mark.parametrize(
    "query, index",
    [
        ("", "movement_store_newest"),
        ("?sku=MUG", "movement_level_newest"),
        ("?kind=sale", "movement_store_kind_newest"),
        ("?since=2000-01-01T00:00:00Z", "movement_store_newest"),
        ("?ordering=id", "movement_store_newest"),
        ("?sku=TEE&kind=sale", ("movement_level_newest", "movement_store_kind_newest")),
        ("?page_size=2&cursor=cD0xMDAwMDAwMA==", "movement_store_newest"),  # p=10000000
    ],
)
def test_the_movements_list(shop, manager, read_plans, query, index):
    with read_plans() as plans:
        response = api_client(manager).get(f"{BERLIN}/movements/{query}")

    assert response.status_code == 200, response.content[:300]
    assert_served_by_indexes(plans, main_index=index)


@pytest.mark.parametrize(
    "query", ["", "?after=5", "?after=5&page_size=3", "?after=9223372036854775807"]
)
def test_the_event_log(shop, manager, read_plans, query):
    with read_plans() as plans:
        response = api_client(manager).get(f"{BERLIN}/events/{query}")

    assert response.status_code == 200, response.content[:300]
    assert_served_by_indexes(plans, main_index="stockevent_store_seq_unique")


def test_pruning_counts_and_deletes_the_oldest_events_through_the_time_index(shop, read_plans):
    """The dry run's count; the batch a DELETE takes is this same SELECT."""
    cutoff = timezone.now()

    with read_plans() as plans:
        events_older_than(cutoff).count()
        list(events_older_than(cutoff).values("pk")[:PRUNE_BATCH_SIZE])

    assert_served_by_indexes(plans, main_index="stockevent_at_idx")


@pytest.mark.parametrize(
    "who, query, index",
    [
        ("staff", "", "audit_event_sequence_key"),
        ("staff", "?store=berlin-01", "audit_event_store_idx"),
        ("staff", "?action=stock.sale", "audit_event_action_idx"),
        ("staff", "?action=stock.", "audit_event_sequence_key"),
        ("staff", "?actor=manager", "audit_event_actor_idx"),
        ("staff", "?since=2000-01-01T00:00:00Z", "audit_event_sequence_key"),
        ("manager", "", "audit_event_store_idx"),
        ("manager", "?action=stock.sale", None),
    ],
)
def test_the_audit_list(shop, request, read_plans, who, query, index):
    with read_plans() as plans:
        response = api_client(request.getfixturevalue(who)).get(f"/api/v1/audit/{query}")

    assert response.status_code == 200, response.content[:300]
    assert_served_by_indexes(plans, main_index=index)


@pytest.mark.parametrize("query", ["", "?sku=TEE,MUG", "?low_stock=true", "?page=1&page_size=2"])
def test_the_stock_list(shop, manager, read_plans, query):
    with read_plans() as plans:
        response = api_client(manager).get(f"{BERLIN}/stock/{query}")

    assert response.status_code == 200, response.content[:300]
    assert_served_by_indexes(plans, main_index="stocklevel_store_product_unique")


def test_a_stock_get_missing_the_cache(shop, manager, read_plans):
    with read_plans() as plans:
        response = api_client(manager).get(f"{BERLIN}/stock/TEE/")

    assert (response.status_code, response["X-Cache"]) == (200, "MISS")
    assert_served_by_indexes(plans, main_index="stocklevel_store_product_unique")


@pytest.mark.parametrize(
    "who, url, index",
    [
        ("staff", "/admin/stock/stocklevel/", "stocklevel_store_product_unique"),
        ("staff", "/admin/stock/stocklevel/?store=berlin-01", "stocklevel_store_product_unique"),
        ("manager", "/admin/stock/stocklevel/", "stocklevel_store_product_unique"),
        ("staff", "/admin/stock/movement/", "stock_movement_pkey"),
        ("staff", "/admin/stock/movement/?store=berlin-01", "movement_store_newest"),
        ("manager", "/admin/stock/movement/", "movement_store_newest"),
        ("staff", "/admin/audit/auditevent/", "audit_event_sequence_key"),
        ("staff", "/admin/audit/auditevent/?store=berlin-01", "audit_event_store_idx"),
        ("manager", "/admin/audit/auditevent/", "audit_event_store_idx"),
        ("staff", "/admin/events/stockevent/", "stockevent_store_seq_unique"),
        ("staff", "/admin/events/stockevent/?store=berlin-01", "stockevent_store_seq_unique"),
        ("manager", "/admin/events/stockevent/", "stockevent_store_seq_unique"),
    ],
)
def test_the_admin_changelists(shop, request, read_plans, who, url, index):
    client = browser(request.getfixturevalue(who))
    client.get(url)  # the process-wide caches warm

    with read_plans() as plans:
        response = client.get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) > 0
    assert_served_by_indexes(plans, main_index=index)


def test_the_low_stock_page(shop, manager, read_plans):
    with read_plans() as plans:
        response = browser(manager).get("/stores/berlin-01/low-stock/")

    assert response.status_code == 200
    assert [level.product.sku for level, _ in response.context["rows"]] == ["CAP"]
    assert_served_by_indexes(plans, main_index="movement_level_newest")


def test_verify_ledger(shop, read_plans, capsys):
    """One pass over every level: the tables read whole through their indexes, in the
    order the grouping needs, never a subquery per level."""
    with read_plans() as plans:
        call_command("verify_ledger")

    assert capsys.readouterr().out == "Ledger consistent: 2586 stock levels checked.\n"
    assert_served_by_indexes(
        plans,
        main_index=("movement_one_per_version", "movement_level_newest"),
        whole_tables=True,
    )


def test_the_check_finds_a_sort_a_full_read_and_a_subquery_per_row(shop, read_plans):
    """The check itself, on what these pages did before: the admin's levels by store
    code and SKU (a sort of every level), a count of a filtered ledger without an index
    for the filter (a read of all of it), the ledger's sums per level in subqueries."""
    with read_plans() as plans:
        list(StockLevel.objects.order_by("store__code", "product__sku")[:100])
        Movement.objects.filter(reason="lost").count()
        list(stock_levels_with_ledger_drift())

    by_store_code, lost, drift = (read.problems() for read in plans)
    assert by_store_code == [
        "Sort of ['stock_stocklevel'] by ['stores_store.code', 'catalog_product.sku']"
    ]
    assert lost == ["Seq Scan on stock_movement"]
    assert "SubPlan per row reading ['stock_movement']" in drift
