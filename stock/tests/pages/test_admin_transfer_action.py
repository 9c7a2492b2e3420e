""" "Transfer selected…" on the stock list: several products of one store to another in
one ``stock_transfer``, all lines or none, with the operator's note in the ledger."""

import pytest

from stock.models import Movement
from stock.services import StockLine, reservation_create, stock_receive
from stock.tests.helpers import level_of
from stores.models import Role
from stores.services import store_update
from tests.factories import MembershipFactory, StoreFactory

from .helpers import browser, messages_of, stock_state

URL = "/admin/stock/stocklevel/"
ACTION = "transfer_selected"


@pytest.fixture
def shelf(level, berlin, tee, mug):
    """berlin-01: TEE-RED-M 10, MUG-BLUE 6 with 2 held (4 available)."""
    stock_receive(store=berlin, product=mug, quantity=6)
    reservation_create(store=berlin, lines=[StockLine(mug, 2)])
    return [level, level_of(berlin, mug)]


def choose(client, levels, *, follow=False, **fields):
    """The action's first step: the levels chosen on the list."""
    data = {"action": ACTION, "_selected_action": [str(level.pk) for level in levels]}
    return client.post(URL, {**data, **fields}, follow=follow)


def apply(client, levels, *, follow=False, **fields):
    """The action's form, submitted."""
    return choose(client, levels, apply="1", follow=follow, **fields)


@pytest.mark.parametrize("role, offered", [("manager", True), ("clerk", False), ("viewer", False)])
def test_the_action_is_offered_to_managers_only(request, shelf, role, offered):
    response = browser(request.getfixturevalue(role)).get(URL)

    actions = response.context["action_form"].fields["action"].choices if offered else []
    assert (ACTION in [name for name, _ in actions]) is offered
    assert ('name="_selected_action"' in response.text) is offered


def test_choosing_levels_shows_a_form_with_a_quantity_for_each(manager, shelf, hamburg, munich):
    response = choose(browser(manager), shelf)

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields) == [
        "to_store",
        f"quantity_{shelf[1].pk}",
        f"quantity_{shelf[0].pk}",
        "note",
    ]
    assert [label for _, label in form.fields["to_store"].choices] == [
        "---------",
        "hamburg-01",
        "munich-01",
    ]
    assert form.fields[f"quantity_{shelf[1].pk}"].label == "MUG-BLUE (Blue mug)"
    assert form.fields[f"quantity_{shelf[1].pk}"].help_text == "4 available"
    for level in shelf:
        assert f'<input type="hidden" name="_selected_action" value="{level.pk}">' in (
            response.text
        )
    assert '<input type="hidden" name="action" value="transfer_selected">' in response.text


def test_the_lines_move_in_one_transfer_with_the_note(manager, shelf, munich, tee, mug, berlin):
    tee_level, mug_level = shelf
    client = browser(manager)

    response = apply(
        client,
        shelf,
        to_store="munich-01",
        **{f"quantity_{tee_level.pk}": "3", f"quantity_{mug_level.pk}": "4"},
        note="weekend market",
    )

    assert (response.status_code, response["Location"]) == (302, URL)
    assert (level_of(berlin, tee).on_hand, level_of(berlin, mug).on_hand) == (7, 2)
    assert (level_of(munich, tee).on_hand, level_of(munich, mug).on_hand) == (3, 4)
    moved = list(Movement.objects.filter(kind__startswith="transfer").order_by("id"))
    assert sorted((m.store.code, m.product.sku, m.delta_on_hand) for m in moved) == [
        ("berlin-01", "MUG-BLUE", -4),
        ("berlin-01", "TEE-RED-M", -3),
        ("munich-01", "MUG-BLUE", 4),
        ("munich-01", "TEE-RED-M", 3),
    ]
    assert {m.reference for m in moved} == {moved[0].reference}  # one transfer
    assert {(m.note, m.actor) for m in moved} == {("weekend market", manager)}
    listed = client.get(URL)
    assert messages_of(listed) == [
        ("success", "Moved 2 products (7 units) from berlin-01 to munich-01.")
    ]


def test_a_blank_quantity_leaves_that_product_out(manager, shelf, munich, tee, mug, berlin):
    tee_level, mug_level = shelf

    response = apply(
        browser(manager), shelf, to_store="munich-01", **{f"quantity_{tee_level.pk}": "2"}
    )

    assert response.status_code == 302
    assert (level_of(berlin, tee).on_hand, level_of(berlin, mug).on_hand) == (8, 6)


def test_a_transfer_short_of_stock_is_refused_whole_naming_every_short_line(manager, shelf, munich):
    tee_level, mug_level = shelf
    before = stock_state()

    response = apply(
        browser(manager),
        shelf,
        to_store="munich-01",
        **{f"quantity_{tee_level.pk}": "11", f"quantity_{mug_level.pk}": "5"},
    )

    assert response.status_code == 409
    [(level, message)] = messages_of(response)
    assert level == "error"
    assert "TEE-RED-M: 11 requested, 10 available" in message
    assert "MUG-BLUE: 5 requested, 4 available" in message
    assert stock_state() == before


NOT_A_CHOICE = "Select a valid choice. That choice is not one of the available choices."
INVALID_INPUT = [
    (
        {},
        {
            "to_store": ["This field is required."],
            "__all__": ["Enter a quantity for at least one product."],
        },
    ),
    (
        {"to_store": "munich-01", "quantity_TEE": "0"},
        {"quantity_TEE": ["Ensure this value is greater than or equal to 1."]},
    ),
    ({"to_store": "munich-01", "quantity_TEE": "two"}, {"quantity_TEE": ["Enter a whole number."]}),
    ({"to_store": "berlin-01", "quantity_TEE": "1"}, {"to_store": [NOT_A_CHOICE]}),
]


@pytest.mark.parametrize("fields, errors", INVALID_INPUT)
def test_invalid_input_is_a_400_with_the_form_and_changes_nothing(
    manager, shelf, munich, fields, errors
):
    tee_key = f"quantity_{shelf[0].pk}"
    fields = {tee_key if key == "quantity_TEE" else key: value for key, value in fields.items()}
    errors = {tee_key if key == "quantity_TEE" else key: value for key, value in errors.items()}
    before = stock_state()

    response = apply(browser(manager), shelf, **fields)

    assert response.status_code == 400
    assert response.context["form"].errors == errors
    assert stock_state() == before


def test_an_inactive_destination_is_not_offered(manager, shelf, munich):
    store_update(store=munich, is_active=False, actor=None)
    before = stock_state()

    response = apply(
        browser(manager), shelf, to_store="munich-01", **{f"quantity_{shelf[0].pk}": "1"}
    )

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["to_store"]
    assert stock_state() == before


def test_levels_of_two_stores_are_refused(staff, shelf, hamburg, munich, mug):
    stock_receive(store=hamburg, product=mug, quantity=3)
    before = stock_state()

    response = choose(browser(staff), [*shelf, level_of(hamburg, mug)], follow=True)

    assert messages_of(response) == [
        (
            "error",
            "A transfer moves stock out of one store: select levels of one store only. "
            "Nothing was moved.",
        )
    ]
    assert stock_state() == before


def test_a_manager_may_not_transfer_from_a_store_they_only_view(manager, shelf, hamburg, mug):
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)
    stock_receive(store=hamburg, product=mug, quantity=3)
    StoreFactory(code="munich-01")
    before = stock_state()

    response = apply(
        browser(manager),
        [level_of(hamburg, mug)],
        to_store="munich-01",
        **{f"quantity_{level_of(hamburg, mug).pk}": "1"},
        follow=True,
    )

    assert messages_of(response) == [
        (
            "error",
            "Only a manager of store hamburg-01 may transfer stock; you are a viewer there. "
            "Nothing was moved.",
        )
    ]
    assert stock_state() == before


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_posting_the_action_change_nothing(request, shelf, munich, role):
    before = stock_state()

    response = apply(
        browser(request.getfixturevalue(role)),
        shelf,
        to_store="munich-01",
        **{f"quantity_{shelf[0].pk}": "1"},
    )

    assert response.status_code == 200  # the list again: they have no actions
    assert response.context["action_form"] is None
    assert stock_state() == before
