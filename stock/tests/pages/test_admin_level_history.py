"""A level's page shows its latest movements, and its "History" its stock changes and
reorder points, not Django's "no change history"."""

import pytest

from audit.services import audit_relay_pending
from stock.services import stock_adjust, stock_receive, stock_set_reorder_point

from .helpers import browser, change_url

LATEST = 10


def history_url(level) -> str:
    return f"/admin/stock/stocklevel/{level.pk}/history/"


@pytest.fixture
def busy_level(level, berlin, tee, manager, clerk):
    """The level's 12 movements: its first receive of 10, then 11 receives of 1 to 11
    units (the last by the clerk, with a note)."""
    for quantity in range(1, 11):
        stock_receive(store=berlin, product=tee, quantity=quantity, actor=manager)
    stock_receive(store=berlin, product=tee, quantity=11, note="late pallet", actor=clerk)
    return level


@pytest.mark.parametrize("role", ["manager", "viewer", "staff"])
def test_a_levels_page_shows_its_latest_ten_movements_newest_first(request, busy_level, role):
    response = browser(request.getfixturevalue(role)).get(change_url(busy_level))

    assert response.status_code == 200
    shown = response.context["latest_movements"]
    assert [movement.delta_on_hand for movement in shown] == list(range(11, 1, -1))
    assert '<table id="level-movements">' in response.text
    assert "late pallet" in response.text
    assert "on hand +11 → 76" in response.text


def test_a_levels_page_links_to_all_its_movements(manager, busy_level):
    response = browser(manager).get(change_url(busy_level))

    assert (
        '<a href="/admin/stock/movement/?store=berlin-01&amp;sku=TEE-RED-M">'
        "All movements of TEE-RED-M in berlin-01</a>"
    ) in response.text


def test_a_level_without_other_movements_shows_its_one(manager, level):
    response = browser(manager).get(change_url(level))

    assert [movement.delta_on_hand for movement in response.context["latest_movements"]] == [10]


# For a manager: session, user, "is a member of any store" (the admin site's permission
# check), the level with its store and product, the latest movements (one query, through
# the (store, product, version) index), then the sidebar's permissions (user, groups).
# The role in its store comes from the lookup cache, warm after the first request.
LEVEL_PAGE_QUERIES = 7


@pytest.mark.parametrize("movements", [1, 12])
def test_the_level_page_takes_the_same_queries_for_1_and_12_movements(
    django_assert_num_queries, manager, level, berlin, tee, movements
):
    for _ in range(movements - 1):
        stock_receive(store=berlin, product=tee, quantity=1, actor=manager)
    client = browser(manager)
    client.get(change_url(level))

    with django_assert_num_queries(LEVEL_PAGE_QUERIES):
        response = client.get(change_url(level))

    assert len(response.context["latest_movements"]) == min(movements, LATEST)


# --- History ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "clerk", "viewer", "staff"])
def test_the_history_of_a_level_lists_its_stock_changes(request, level, berlin, tee, manager, role):
    stock_adjust(
        store=berlin, product=tee, delta=-2, reason="damaged", note="dropped", actor=manager
    )

    response = browser(request.getfixturevalue(role)).get(history_url(level))

    assert response.status_code == 200
    assert "doesn’t have a change history" not in response.text
    assert [
        (movement.kind, movement.delta_on_hand, movement.reason, movement.note)
        for movement in response.context["movements"]
    ] == [("adjust", -2, "damaged", "dropped"), ("receive", 10, "", "")]
    assert "on hand -2 → 8" in response.text
    assert "dropped" in response.text


def test_the_history_shows_the_reorder_point_changes_too(manager, level, berlin, tee):
    stock_set_reorder_point(store=berlin, product=tee, reorder_point=4, actor=manager)
    stock_set_reorder_point(store=berlin, product=tee, reorder_point=7, actor=manager)
    audit_relay_pending()

    response = browser(manager).get(history_url(level))

    assert [
        (event.actor_username, event.before, event.after)
        for event in response.context["reorder_point_changes"]
    ] == [
        ("manager", {"reorder_point": 4}, {"reorder_point": 7}),
        ("manager", {"reorder_point": 0}, {"reorder_point": 4}),
    ]
    assert "Reorder point 4 → 7 by manager" in response.text


def test_the_history_is_paginated_by_a_hundred(manager, level, berlin, tee):
    for _ in range(100):
        stock_receive(store=berlin, product=tee, quantity=1, actor=manager)

    first = browser(manager).get(history_url(level))
    second = browser(manager).get(history_url(level), {"p": "2"})

    assert len(first.context["movements"]) == 100
    assert [movement.version_after for movement in second.context["movements"]] == [1]
    assert "101 movements" in first.text


def test_the_history_of_another_stores_level_is_not_found(hamburg_manager, level):
    response = browser(hamburg_manager).get(history_url(level), follow=True)

    assert response.redirect_chain == [("/admin/", 302)]
    assert "movements" not in response.context
