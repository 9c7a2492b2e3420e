"""The store-scoped admin lists count only what is cheap to count
(``inventory_site.admin_lists``): at 5,000,000 levels Django's COUNT(*) of the whole list
would take longer than the page. The limits are lowered here so that a few rows cross
them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory_site import admin_lists
from stock.admin import StockLevelAdmin
from stock.services import stock_receive
from tests.app_role import as_owner
from tests.factories import ProductFactory

from .helpers import browser, rows

URL = "/admin/stock/stocklevel/"
on_postgresql = pytest.mark.postgresql("the estimates are PostgreSQL's statistics and plans")


@pytest.fixture
def five_levels(berlin, hamburg):
    """Three levels in berlin-01, two in hamburg-01."""
    for store, skus in ((berlin, ["A", "B", "C"]), (hamburg, ["D", "E"])):
        for sku in skus:
            stock_receive(store=store, product=ProductFactory(sku=sku), quantity=1)


def analyze():
    with as_owner(), connection.cursor() as cursor:  # ANALYZE is the owner's
        cursor.execute("ANALYZE stock_stocklevel")


def paginator(response):
    return response.context["cl"].paginator


def test_a_list_within_the_limit_is_counted(manager, staff, five_levels):
    for user, count in ((manager, 3), (staff, 5)):
        response = browser(user).get(URL)

        assert (paginator(response).count, paginator(response).estimated) == (count, False)
        assert f"{count} stock levels" in response.text


@on_postgresql
def test_an_unfiltered_list_past_the_limit_shows_the_tables_statistics(
    staff, five_levels, berlin, monkeypatch
):
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 2)
    analyze()
    stock_receive(store=berlin, product=ProductFactory(sku="NEW"), quantity=1)  # not counted

    response = browser(staff).get(URL)

    assert (paginator(response).count, paginator(response).estimated) == (5, True)
    assert '<span title="estimated from the database\'s statistics">about 5</span>' in response.text
    assert len(rows(response)) == 6  # the page itself is read as it is
    assert response.context["cl"].can_show_all is False


@on_postgresql
def test_a_filtered_list_past_the_limit_is_estimated_by_the_planner(
    manager, five_levels, monkeypatch
):
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 2)

    response = browser(manager).get(URL)

    assert paginator(response).estimated is True
    assert paginator(response).count >= 3
    assert len(rows(response)) == 3


@on_postgresql
def test_a_filtered_list_the_planner_finds_costly_to_count_is_estimated_uncounted(
    manager, five_levels, monkeypatch
):
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_MAX_COST", 0)

    with CaptureQueriesContext(connection) as queries:
        response = browser(manager).get(URL)

    assert paginator(response).estimated is True
    assert [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()] == []
    assert len(rows(response)) == 3


@pytest.fixture
def two_a_page(monkeypatch):
    monkeypatch.setattr(StockLevelAdmin, "list_per_page", 2)


@on_postgresql
def test_a_page_past_an_estimate_is_shown_empty_rather_than_refused(
    staff, five_levels, monkeypatch, two_a_page
):
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 2)
    analyze()

    last = browser(staff).get(URL, {"p": 3})
    past = browser(staff).get(URL, {"p": 5})

    assert [level.product.sku for level in rows(last)] == ["E"]
    assert (past.status_code, rows(past)) == (200, [])


def test_a_page_past_an_exact_count_is_refused_as_django_does(staff, five_levels, two_a_page):
    response = browser(staff).get(URL, {"p": 5})

    assert (response.status_code, response["Location"]) == (302, f"{URL}?e=1")
