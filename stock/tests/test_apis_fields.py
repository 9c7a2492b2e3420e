"""What the stock answers carry for an integrator: the product's name on every level, the
id of the movement an operation recorded, and the operator's note in the ledger."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stock.models import Movement
from stock.services import stock_receive
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory

BASE = "/api/v1/stores/berlin-01"


def test_list_rows_carry_the_product_name_without_a_query_per_row(
    manager_api, berlin, tee, django_assert_num_queries
):
    stock_receive(store=berlin, product=tee, quantity=3)
    for number in range(20):
        stock_receive(store=berlin, product=ProductFactory(sku=f"MUG-{number:02}"), quantity=1)

    with django_assert_num_queries(4):  # token user, store and role, count, page
        response = manager_api.get(f"{BASE}/stock/?page_size=50")

    rows = response.json()["results"]
    assert len(rows) == 21
    assert rows[-1] == {
        "store": "berlin-01",
        "sku": "TEE",
        "product_name": "T-shirt",
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
        "reorder_point": 0,
        "version": 1,
        "updated_at": rows[-1]["updated_at"],
    }


def test_the_detail_carries_the_product_name_from_the_database_and_the_cache(
    manager_api, berlin, tee
):
    stock_receive(store=berlin, product=tee, quantity=3)

    miss = manager_api.get(f"{BASE}/stock/TEE/")
    hit = manager_api.get(f"{BASE}/stock/TEE/")

    assert (miss["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert miss.json()["product_name"] == hit.json()["product_name"] == "T-shirt"


@pytest.mark.parametrize(
    "path, body",
    [
        ("receive", {"quantity": 5}),
        ("adjust", {"delta": -2, "reason": "damaged"}),
        ("set", {"on_hand": 12}),
        ("purchase", {"quantity": 3, "reference": "order-1"}),
    ],
)
def test_an_operation_answers_the_movement_it_recorded(manager_api, berlin, tee, path, body):
    stock_receive(store=berlin, product=tee, quantity=10)

    response = manager_api.post(f"{BASE}/stock/TEE/{path}/", body, format="json")

    assert response.status_code == 200
    newest = Movement.objects.order_by("-id").first()
    assert response.json()["movement_id"] == newest.pk
    assert response.json()["product_name"] == "T-shirt"
    assert newest.on_hand_after == response.json()["on_hand"]


def test_the_sale_movement_id_costs_no_statement_of_its_own(manager_api, berlin, tee):
    """The guarded statement returns the ledger row it wrote (on PostgreSQL, one
    statement updates the level and records the movement): the movement is not read
    back."""
    stock_receive(store=berlin, product=tee, quantity=10)
    movements = Movement._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        response = manager_api.post(f"{BASE}/stock/TEE/purchase/", {"quantity": 1}, format="json")

    touching_the_ledger = [query for query in queries if movements in query["sql"]]
    assert len(touching_the_ledger) == 1
    assert "INSERT" in touching_the_ledger[0]["sql"]
    assert response.json()["movement_id"] == Movement.objects.get(kind="sale").pk


def test_a_replayed_purchase_answers_the_same_movement_id(manager_api, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=10)

    first, again = (
        manager_api.post(
            f"{BASE}/stock/TEE/purchase/",
            {"quantity": 1},
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-7",
        )
        for _ in range(2)
    )

    assert first.json()["movement_id"] == again.json()["movement_id"]
    assert Movement.objects.filter(kind="sale").count() == 1


def test_transfer_levels_carry_their_movement_ids(manager_api, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=10)
    hamburg = StoreFactory(code="hamburg-01")

    body = manager_api.post(
        f"{BASE}/transfers/",
        {"to_store": "hamburg-01", "lines": [{"sku": "TEE", "quantity": 4}]},
        format="json",
    ).json()

    [source], [destination] = body["source_levels"], body["destination_levels"]
    assert source["movement_id"] == Movement.objects.get(store=berlin, kind="transfer_out").pk
    assert destination["movement_id"] == (
        Movement.objects.get(store=hamburg, kind="transfer_in").pk
    )
    assert source["product_name"] == destination["product_name"] == "T-shirt"


def test_the_ledger_lists_the_operators_note(manager_api, berlin, tee, manager):
    MembershipFactory(user=manager, store=StoreFactory(code="hamburg-01"), role=Role.VIEWER)
    stock_receive(store=berlin, product=tee, quantity=10)
    manager_api.post(
        f"{BASE}/stock/TEE/adjust/",
        {"delta": -1, "reason": "damaged", "note": "dropped by the till"},
        format="json",
    )

    movements = manager_api.get(f"{BASE}/movements/").json()["results"]

    assert [movement["note"] for movement in movements] == ["dropped by the till", ""]
