"""A deactivated product or store keeps its stock readable, but nothing receives, sells,
holds or moves its units: every such change is refused with 409 and changes nothing.
Giving held units back (release, expiry) still works."""

import pytest
from django.db.models import Sum

from catalog.services import product_update
from stock.exceptions import ProductInactive, StoreInactive
from stock.models import Movement, Reservation, ReservationStatus, StockLevel
from stock.services import (
    StockLine,
    reservation_commit,
    reservation_create,
    reservation_release,
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_set_count,
    stock_set_reorder_point,
    stock_transfer,
)
from stores.models import Role
from stores.services import store_update
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory

CHANGES = {
    "receive": lambda s, o, p: stock_receive(store=s, product=p, quantity=1),
    "adjust": lambda s, o, p: stock_adjust(store=s, product=p, delta=-1, reason="damaged"),
    "set count": lambda s, o, p: stock_set_count(store=s, product=p, on_hand=3),
    "purchase": lambda s, o, p: stock_purchase(store=s, product=p, quantity=1),
    "reserve": lambda s, o, p: reservation_create(store=s, lines=[StockLine(p, 1)]),
    "transfer out": lambda s, o, p: stock_transfer(
        from_store=s, to_store=o, lines=[StockLine(p, 1)]
    ),
    "transfer in": lambda s, o, p: stock_transfer(
        from_store=o, to_store=s, lines=[StockLine(p, 1)]
    ),
}


@pytest.fixture
def stocked(store, other_store, product):
    for each in (store, other_store):
        stock_receive(store=each, product=product, quantity=10)
    return store, other_store, product


def ledger_state():
    return (
        Movement.objects.count(),
        list(StockLevel.objects.order_by("pk").values_list("on_hand", "reserved", "version")),
        Reservation.objects.count(),
    )


@pytest.mark.parametrize("change", CHANGES)
def test_no_stock_change_of_a_deactivated_product(stocked, change):
    store, other_store, product = stocked
    product_update(product=product, is_active=False, actor=None)
    before = ledger_state()

    with pytest.raises(ProductInactive) as refused:
        CHANGES[change](store, other_store, product)

    assert refused.value.code == "product_inactive"
    assert ledger_state() == before


@pytest.mark.parametrize("change", CHANGES)
def test_no_stock_change_in_a_deactivated_store(stocked, change):
    store, other_store, product = stocked
    store_update(store=store, is_active=False, actor=None)
    before = ledger_state()

    with pytest.raises(StoreInactive) as refused:
        CHANGES[change](store, other_store, product)

    assert refused.value.code == "store_inactive"
    assert ledger_state() == before


def test_a_hold_of_a_product_deactivated_since_is_not_committed_but_can_be_released(stocked):
    store, _, product = stocked
    reservation = reservation_create(store=store, lines=[StockLine(product, 2)])
    product_update(product=product, is_active=False, actor=None)

    with pytest.raises(ProductInactive):
        reservation_commit(reservation=reservation)
    assert Reservation.objects.get().status == ReservationStatus.ACTIVE

    reservation_release(reservation=reservation)
    assert Reservation.objects.get().status == ReservationStatus.RELEASED
    assert StockLevel.objects.get(store=store).reserved == 0


def test_the_reorder_point_of_a_deactivated_product_can_still_be_set(stocked):
    store, _, product = stocked
    product_update(product=product, is_active=False, actor=None)

    level = stock_set_reorder_point(store=store, product=product, reorder_point=4)

    assert level.reorder_point == 4


# --- Over the API ---------------------------------------------------------------------

OPERATIONS = [
    ("stock/TEE-RED-M/receive/", {"quantity": 1}),
    ("stock/TEE-RED-M/adjust/", {"delta": -1, "reason": "lost"}),
    ("stock/TEE-RED-M/set/", {"on_hand": 1}),
    ("stock/TEE-RED-M/purchase/", {"quantity": 1}),
    ("reservations/", {"lines": [{"sku": "TEE-RED-M", "quantity": 1}]}),
    ("transfers/", {"to_store": "hamburg-01", "lines": [{"sku": "TEE-RED-M", "quantity": 1}]}),
]


@pytest.fixture
def manager_client(stocked):
    store, _, _ = stocked
    manager = MembershipFactory(store=store, role=Role.MANAGER).user
    return api_client(manager)


@pytest.mark.parametrize("path, body", OPERATIONS)
@pytest.mark.parametrize(
    "deactivate, code",
    [
        (lambda s, p: product_update(product=p, is_active=False, actor=None), "product_inactive"),
        (lambda s, p: store_update(store=s, is_active=False, actor=None), "store_inactive"),
    ],
)
def test_the_api_answers_409_and_changes_nothing(
    stocked, manager_client, path, body, deactivate, code
):
    store, _, product = stocked
    deactivate(store, product)
    before = ledger_state()

    response = manager_client.post(f"/api/v1/stores/berlin-01/{path}", body, format="json")

    assert_error(response, 409, code)
    assert ledger_state() == before


def test_reads_of_a_deactivated_product_still_work(stocked, manager_client):
    store, _, product = stocked
    product_update(product=product, is_active=False, actor=None)
    store_update(store=store, is_active=False, actor=None)

    level = manager_client.get("/api/v1/stores/berlin-01/stock/TEE-RED-M/")
    levels = manager_client.get("/api/v1/stores/berlin-01/stock/")
    ledger = manager_client.get("/api/v1/stores/berlin-01/movements/")

    assert (level.status_code, level.json()["on_hand"]) == (200, 10)
    assert (levels.status_code, levels.json()["count"]) == (200, 1)
    assert (ledger.status_code, len(ledger.json()["results"])) == (200, 1)
    assert Movement.objects.aggregate(total=Sum("delta_on_hand"))["total"] == 20
