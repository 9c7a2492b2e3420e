"""An adjustment's sign must fit its reason, through the API and the commands alike
(the rule is ``stock.services.stock_adjust``'s; the admin's side is in
``pages/test_admin_adjustment_signs.py``)."""

import pytest
from django.core.management import CommandError, call_command

from stock.models import Movement
from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, UserFactory

from .helpers import level_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def stocked(store, product):
    """10 TEE-RED-M in berlin-01, version 1."""
    stock_receive(store=store, product=product, quantity=10)


def assert_nothing_changed(store, product):
    level = level_of(store, product)
    assert (level.on_hand, level.version) == (10, 1)
    assert Movement.objects.count() == 1


@pytest.mark.parametrize(
    "delta, reason, sentence",
    [
        (3, "damaged", "A damaged adjustment lowers stock: delta must be negative."),
        (-3, "found", "A found adjustment raises stock: delta must be positive."),
    ],
)
def test_the_api_answers_400_naming_delta(store, product, stocked, delta, reason, sentence):
    manager = UserFactory()
    MembershipFactory(user=manager, store=store, role=Role.MANAGER)

    response = api_client(manager).post(
        "/api/v1/stores/berlin-01/stock/TEE-RED-M/adjust/",
        {"delta": delta, "reason": reason},
        format="json",
    )

    assert assert_error(response, 400, "invalid") == {
        "detail": "The request has invalid fields: delta.",
        "code": "invalid",
        "errors": {"delta": [sentence]},
    }
    assert_nothing_changed(store, product)


def test_the_stock_command_refuses_the_move(store, product, stocked):
    with pytest.raises(CommandError) as refused:
        call_command("stock", "move", "berlin-01", "TEE-RED-M", "+2", "--reason", "lost")

    assert str(refused.value) == "A lost adjustment lowers stock: delta must be negative."
    assert_nothing_changed(store, product)


def test_import_stock_names_each_line_whose_sign_does_not_fit(
    store, product, other_product, stocked, tmp_path, capsys
):
    stock_receive(store=store, product=other_product, quantity=10)
    path = tmp_path / "damaged.csv"
    path.write_text("store,sku,delta\nberlin-01,TEE-RED-M,-2\nberlin-01,MUG-BLUE,2\n")

    with pytest.raises(CommandError) as refused:
        call_command("import_stock", str(path), "--reason", "damaged")

    assert str(refused.value) == f"{path}: nothing imported; 1 problem(s) found."
    assert capsys.readouterr().err == (
        "line 3: A damaged adjustment lowers stock: delta must be negative.\n"
    )
    assert (level_of(store, product).on_hand, level_of(store, other_product).on_hand) == (10, 10)
    assert Movement.objects.count() == 2
