"""GET /stores/<code>/low-stock/: what a store's managers should reorder, with each
level's latest movements."""

import pytest
from django.db import connection
from django.test import Client

from stock.models import Movement
from stock.services import (
    StockLine,
    reservation_create,
    stock_adjust,
    stock_receive,
    stock_set_reorder_point,
)
from tests.factories import ProductFactory

from .helpers import browser

URL = "/stores/berlin-01/low-stock/"
EMPTY_STATE = "<p>Nothing is at or below its reorder point.</p>"


def stocked(store, sku, *, on_hand, reorder_point, actor=None):
    """A level of a new product with ``on_hand`` units, after two movements (a receive
    of one more, an adjust of -1)."""
    product = ProductFactory(sku=sku)
    stock_receive(store=store, product=product, quantity=on_hand + 1, actor=actor)
    stock_adjust(store=store, product=product, delta=-1, reason="damaged", actor=actor)
    stock_set_reorder_point(store=store, product=product, reorder_point=reorder_point)
    return product


def listed(response) -> list[tuple]:
    return [
        (level.product.sku, level.available, level.reorder_point)
        for level, _ in response.context["rows"]
    ]


@pytest.fixture
def shelves(berlin, hamburg, manager):
    """berlin-01 holds four levels at or below their reorder point and one above it;
    hamburg-01 holds a level far below its own."""
    stocked(berlin, "EQUAL", on_hand=4, reorder_point=4)  # 0 from its reorder point
    stocked(berlin, "OUT", on_hand=0, reorder_point=5, actor=manager)  # -5
    stocked(berlin, "ABOVE", on_hand=10, reorder_point=3)  # +7, not low
    stocked(berlin, "BELOW", on_hand=2, reorder_point=5)  # -3
    held = stocked(berlin, "HELD", on_hand=6, reorder_point=3)
    reservation_create(store=berlin, lines=[StockLine(held, 4)])  # available 2: -1
    stocked(hamburg, "FAR-AWAY", on_hand=0, reorder_point=50)


# --- Who may see it -----------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_admin_login(berlin):
    response = Client().get(URL)

    assert (response.status_code, response["Location"]) == (
        302,
        "/admin/login/?next=/stores/berlin-01/low-stock/",
    )


def test_an_inactive_manager_is_sent_to_the_admin_login(inactive_manager):
    response = browser(inactive_manager).get(URL)

    assert (response.status_code, response["Location"]) == (
        302,
        "/admin/login/?next=/stores/berlin-01/low-stock/",
    )


@pytest.mark.parametrize("role", ["hamburg_manager", "outsider"])
def test_a_store_the_user_is_not_a_member_of_is_not_found(request, berlin, role):
    response = browser(request.getfixturevalue(role)).get(URL)

    assert response.status_code == 404


def test_an_unknown_store_is_not_found_even_for_staff(staff):
    assert browser(staff).get("/stores/nowhere-01/low-stock/").status_code == 404


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_may_not_see_it(request, shelves, role):
    response = browser(request.getfixturevalue(role)).get(URL)

    assert response.status_code == 403


@pytest.mark.parametrize("role", ["manager", "staff"])
def test_managers_and_staff_see_it(request, shelves, role):
    response = browser(request.getfixturevalue(role)).get(URL)

    assert response.status_code == 200
    assert "<h1>Low stock in Berlin (berlin-01)</h1>" in response.text


# --- What it lists ------------------------------------------------------------------


def test_it_lists_the_stores_levels_at_or_below_their_reorder_point_furthest_below_first(
    manager, shelves
):
    response = browser(manager).get(URL)

    assert listed(response) == [("OUT", 0, 5), ("BELOW", 2, 5), ("HELD", 2, 3), ("EQUAL", 4, 4)]


def test_its_table_shows_the_levels_in_that_order_with_links_to_their_pages(manager, shelves):
    response = browser(manager).get(URL)

    text = response.text
    positions = [text.index(f">{sku}</a></td>") for sku in ("OUT", "BELOW", "HELD", "EQUAL")]
    assert positions == sorted(positions)
    assert ">ABOVE<" not in text
    assert ">FAR-AWAY<" not in text
    [(out, _)] = [row for row in response.context["rows"] if row[0].product.sku == "OUT"]
    assert f'<a href="/admin/stock/stocklevel/{out.pk}/change/">OUT</a>' in text


def test_each_level_comes_with_its_latest_five_movements_newest_first(manager, berlin, hamburg):
    busy = stocked(berlin, "BUSY", on_hand=3, reorder_point=10)  # 2 movements
    for _ in range(5):
        stock_receive(store=berlin, product=busy, quantity=1, actor=manager)  # 7 in all
    stock_receive(store=hamburg, product=busy, quantity=100)  # another store's: never shown
    quiet = stocked(berlin, "QUIET", on_hand=1, reorder_point=1)  # 2 movements

    response = browser(manager).get(URL)

    recent = {level.product.sku: movements for level, movements in response.context["rows"]}
    latest_busy = Movement.objects.filter(store=berlin, product=busy).order_by("-id")[:5]
    assert [m.pk for m in recent["BUSY"]] == [m.pk for m in latest_busy]
    assert [m.kind for m in recent["BUSY"]] == ["receive"] * 5
    assert [(m.kind, m.delta_on_hand) for m in recent["QUIET"]] == [
        ("adjust", -1),
        ("receive", 2),
    ]
    assert [m.store_id for m in recent["BUSY"] + recent["QUIET"]] == [berlin.pk] * 7
    assert Movement.objects.filter(product__in=[busy, quiet]).count() == 10


def test_a_movement_is_shown_with_its_kind_delta_reason_and_actor(manager, shelves):
    response = browser(manager).get(URL)

    [(_, movements)] = [row for row in response.context["rows"] if row[0].product.sku == "OUT"]
    assert [(m.kind, m.delta_on_hand, m.reason, m.actor) for m in movements] == [
        ("adjust", -1, "damaged", manager),
        ("receive", 1, "", manager),
    ]
    assert "Adjust: on hand -1 → 0 (damaged) by manager</div>" in response.text
    assert "Receive: on hand +1 → 1 by manager</div>" in response.text


def test_a_hold_is_shown_as_what_it_reserved(manager, berlin):
    product = stocked(berlin, "HELD", on_hand=3, reorder_point=5)
    reservation_create(store=berlin, lines=[StockLine(product, 2)], actor=manager)

    response = browser(manager).get(URL)

    assert "Reserve: reserved +2 → 2 by manager</div>" in response.text


def test_the_page_says_so_when_nothing_is_low(manager, berlin, hamburg):
    stocked(berlin, "PLENTY", on_hand=10, reorder_point=3)
    stocked(hamburg, "FAR-AWAY", on_hand=0, reorder_point=50)

    response = browser(manager).get(URL)

    assert response.status_code == 200
    assert response.context["rows"] == []
    assert EMPTY_STATE in response.text
    assert '<table id="low-stock">' not in response.text


def test_the_page_lists_nothing_for_a_store_without_stock(manager):
    response = browser(manager).get(URL)

    assert (response.status_code, response.context["rows"]) == (200, [])
    assert EMPTY_STATE in response.text


# --- Queries ------------------------------------------------------------------------

# Observed for a manager: session, user, the low levels, their recent movements (one
# query: at most five rows per level, stock/selectors.py), then the admin sidebar: is
# the user a member of any store, their user and group permissions. The store and the
# role in it come from the lookup cache, warm after the first request. A superuser
# needs no permissions: 4 in all. On PostgreSQL the LATERAL join reads the movements'
# ids, and a second query the movements with their actors: one query more.
LOW_STOCK_PAGE_QUERIES = {"manager": 7, "staff": 4}


def low_stock_page_queries(role) -> int:
    return LOW_STOCK_PAGE_QUERIES[role] + (connection.vendor == "postgresql")


@pytest.mark.parametrize("role", ["manager", "staff"])
@pytest.mark.parametrize("low_items", [1, 20])
def test_the_page_takes_the_same_queries_for_1_and_20_low_items(
    request, django_assert_num_queries, berlin, manager, role, low_items
):
    for number in range(low_items):
        product = stocked(berlin, f"LOW-{number:02d}", on_hand=1, reorder_point=100)
        for _ in range(5):  # 7 movements in all, 5 of them shown
            stock_receive(store=berlin, product=product, quantity=1, actor=manager)
    client = browser(request.getfixturevalue(role))
    client.get(URL)  # warm up the process-wide caches

    with django_assert_num_queries(low_stock_page_queries(role)):
        response = client.get(URL)

    assert response.status_code == 200
    assert len(response.context["rows"]) == low_items
    assert {len(movements) for _, movements in response.context["rows"]} == {5}
