""" "Set the reorder point of selected levels…" on the stock list: one reorder point for
many levels, each through ``stock_set_reorder_point`` (audited one by one), all or none,
in the stores the user manages only."""

import pytest

from audit.models import AuditOutboxEntry
from stock.services import stock_receive, stock_set_reorder_point
from stock.tests.helpers import level_of
from stores.models import Role
from tests.factories import MembershipFactory

from .helpers import browser, messages_of, stock_state

URL = "/admin/stock/stocklevel/"
ACTION = "set_reorder_point_selected"


@pytest.fixture
def shelf(level, berlin, tee, mug):
    """berlin-01: TEE-RED-M (reorder point 0) and MUG-BLUE (reorder point 5)."""
    stock_receive(store=berlin, product=mug, quantity=6)
    stock_set_reorder_point(store=berlin, product=mug, reorder_point=5)
    return [level, level_of(berlin, mug)]


def post_action(client, levels, *, follow=False, **fields):
    data = {"action": ACTION, "_selected_action": [str(level.pk) for level in levels]}
    return client.post(URL, {**data, **fields}, follow=follow)


def reorder_points() -> dict:
    from stock.models import StockLevel

    return {
        (level.store.code, level.product.sku): level.reorder_point
        for level in StockLevel.objects.select_related("store", "product")
    }


def test_choosing_levels_asks_for_the_reorder_point(manager, shelf):
    response = post_action(browser(manager), shelf)

    assert response.status_code == 200
    assert list(response.context["form"].fields) == ["reorder_point"]
    assert "2 levels selected:" in response.text


def test_the_reorder_point_is_set_on_every_chosen_level_through_the_service(manager, shelf, berlin):
    AuditOutboxEntry.objects.all().delete()
    client = browser(manager)

    response = post_action(client, shelf, apply="1", reorder_point="5")

    assert (response.status_code, response["Location"]) == (302, URL)
    assert reorder_points() == {("berlin-01", "TEE-RED-M"): 5, ("berlin-01", "MUG-BLUE"): 5}
    assert list(
        AuditOutboxEntry.objects.values_list("action", "actor_username", "object_repr", "after")
    ) == [("stock.reorder_point", "manager", "TEE-RED-M @ berlin-01", {"reorder_point": 5})]
    assert messages_of(client.get(URL)) == [
        ("success", "Reorder point 5 set for 1 level; 1 had it already.")
    ]


def test_staff_set_it_across_stores(staff, shelf, hamburg, mug):
    stock_receive(store=hamburg, product=mug, quantity=1)

    response = post_action(
        browser(staff), [*shelf, level_of(hamburg, mug)], apply="1", reorder_point="8"
    )

    assert response.status_code == 302
    assert set(reorder_points().values()) == {8}


@pytest.mark.parametrize(
    "value, error",
    [
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("1000001", "Ensure this value is less than or equal to 1000000."),
        ("many", "Enter a whole number."),
        ("", "This field is required."),
    ],
)
def test_an_invalid_reorder_point_is_a_400_and_changes_nothing(manager, shelf, value, error):
    before = stock_state()

    response = post_action(browser(manager), shelf, apply="1", reorder_point=value)

    assert response.status_code == 400
    assert response.context["form"].errors == {"reorder_point": [error]}
    assert stock_state() == before


def test_levels_of_a_store_the_manager_only_views_are_refused_whole(manager, shelf, hamburg, mug):
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)
    stock_receive(store=hamburg, product=mug, quantity=1)
    before = stock_state()

    response = post_action(
        browser(manager),
        [*shelf, level_of(hamburg, mug)],
        apply="1",
        reorder_point="9",
        follow=True,
    )

    assert messages_of(response) == [
        (
            "error",
            "Only a store's managers set its reorder points; you do not manage hamburg-01. "
            "Nothing was changed.",
        )
    ]
    assert stock_state() == before


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_are_not_offered_it_and_posting_it_changes_nothing(request, shelf, role):
    client = browser(request.getfixturevalue(role))
    before = stock_state()

    listed = client.get(URL)
    posted = post_action(client, shelf, apply="1", reorder_point="9")

    assert listed.context["action_form"] is None
    assert posted.status_code == 200
    assert stock_state() == before
