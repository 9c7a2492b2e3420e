""" "Switch the flash-sale gate on/off" on the stock list, its column and its filter: each
chosen level through ``gate_switch`` (audited one by one), in the stores the user
manages only."""

import pytest

from audit.models import AuditOutboxEntry
from stock.flash_gate.services import gate_state, gate_switch
from stock.models import FlashSaleGate
from stock.services import stock_receive
from stock.tests.helpers import level_of
from stores.models import Role
from tests.factories import MembershipFactory

from .helpers import browser, column, messages_of, rows

URL = "/admin/stock/stocklevel/"
ON, OFF = "switch_gate_on_selected", "switch_gate_off_selected"


@pytest.fixture
def shelf(level, berlin, mug):
    """berlin-01: TEE-RED-M (10 units) and MUG-BLUE (6 units), their gates off."""
    stock_receive(store=berlin, product=mug, quantity=6)
    return [level, level_of(berlin, mug)]


def post_action(client, action, levels, **kwargs):
    data = {"action": action, "_selected_action": [str(level.pk) for level in levels]}
    return client.post(URL, data, **kwargs)


def gated() -> list[tuple[str, str]]:
    return list(
        FlashSaleGate.objects.order_by("level__product__sku").values_list(
            "level__store__code", "level__product__sku"
        )
    )


def gate_events() -> list[tuple]:
    return list(
        AuditOutboxEntry.objects.filter(action="stock.flash_gate")
        .order_by("pk")
        .values_list("actor_username", "object_repr", "after")
    )


def test_a_manager_switches_the_gates_of_the_chosen_levels_on(manager, shelf):
    client = browser(manager)

    response = post_action(client, ON, shelf, follow=True)

    assert gated() == [("berlin-01", "MUG-BLUE"), ("berlin-01", "TEE-RED-M")]
    assert gate_events() == [
        ("manager", "MUG-BLUE @ berlin-01", {"enabled": True}),
        ("manager", "TEE-RED-M @ berlin-01", {"enabled": True}),
    ]
    assert messages_of(response)[0] == ("success", "Flash-sale gate switched on for 2 levels.")


def test_without_redis_the_manager_is_told_the_gates_wait_for_it(without_redis, manager, shelf):
    response = post_action(browser(manager), ON, shelf, follow=True)

    assert len(gated()) == 2
    assert messages_of(response) == [
        ("success", "Flash-sale gate switched on for 2 levels."),
        (
            "warning",
            "This site runs without Redis, which holds the gates' tokens: the gates are "
            "recorded and take effect once it runs with Redis.",
        ),
    ]


def test_levels_already_switched_are_left_alone_and_counted(manager, shelf, berlin, tee):
    gate_switch(store=berlin, product=tee, enabled=True)

    response = post_action(browser(manager), OFF, shelf, follow=True)

    assert gated() == []
    assert [after for _, _, after in gate_events()] == [{"enabled": True}, {"enabled": False}]
    assert messages_of(response) == [
        ("success", "Flash-sale gate switched off for 1 level; 1 had it off already.")
    ]


def test_levels_of_a_store_the_manager_only_views_are_refused_whole(manager, shelf, hamburg, mug):
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)
    stock_receive(store=hamburg, product=mug, quantity=1)

    response = post_action(browser(manager), ON, [*shelf, level_of(hamburg, mug)], follow=True)

    assert messages_of(response) == [
        (
            "error",
            "Only a store's managers switch its flash-sale gates; you do not manage "
            "hamburg-01. Nothing was changed.",
        )
    ]
    assert gated() == []
    assert gate_events() == []


def test_another_stores_manager_cannot_reach_these_levels(hamburg_manager, shelf):
    """The list holds only the levels of their stores: the chosen ids match none."""
    post_action(browser(hamburg_manager), ON, shelf, follow=True)

    assert gated() == []


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_are_not_offered_it_and_posting_it_changes_nothing(request, shelf, role):
    client = browser(request.getfixturevalue(role))

    listed = client.get(URL)
    posted = post_action(client, ON, shelf)

    assert listed.context["action_form"] is None
    assert posted.status_code == 200
    assert gated() == []


def test_staff_switch_gates_in_every_store(staff, shelf, hamburg, mug):
    stock_receive(store=hamburg, product=mug, quantity=1)

    post_action(browser(staff), ON, [*shelf, level_of(hamburg, mug)])

    assert len(gated()) == 3


def test_the_list_shows_which_levels_are_gated_and_filters_by_it(manager, shelf, berlin, tee):
    gate_switch(store=berlin, product=tee, enabled=True)
    client = browser(manager)

    listed = client.get(URL)
    on = client.get(URL, {"flash_gate": "on"})
    off = client.get(URL, {"flash_gate": "off"})

    assert [level.product.sku for level in rows(listed)] == ["TEE-RED-M", "MUG-BLUE"]
    assert column(listed, "gate") == ["on", ""]
    assert [level.product.sku for level in rows(on)] == ["TEE-RED-M"]
    assert [level.product.sku for level in rows(off)] == ["MUG-BLUE"]


@pytest.mark.services("the flash-sale gate keeps its tokens in Redis")
@pytest.mark.django_db(transaction=True)
def test_switched_on_in_the_admin_redis_holds_a_token_per_available_unit(
    manager, shelf, berlin, tee
):
    post_action(browser(manager), ON, shelf[:1])

    assert gate_state(store=berlin, product=tee) == {
        "enabled": True,
        "tokens": 10,
        "admitted": 0,
        "refunded": 0,
    }
