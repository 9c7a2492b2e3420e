"""The stock endpoints: levels, the four operations, reorder points, transfers, ledger."""

import pytest
from django.test import Client

from stock.models import Movement, StockLevel
from stock.services import stock_purchase, stock_receive
from stores.models import Role
from tests.api import assert_error
from tests.factories import MembershipFactory, ProductFactory, StoreFactory

BASE = "/api/v1/stores/berlin-01"


@pytest.fixture
def client(manager_api):
    return manager_api


def level_body(response):
    body = response.json()
    body.pop("updated_at")
    return body


def test_a_stock_level_reads_with_its_version_as_etag(client, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=7)

    response = client.get(f"{BASE}/stock/TEE/")

    assert response.status_code == 200
    assert level_body(response) == {
        "store": "berlin-01",
        "sku": "TEE",
        "product_name": "T-shirt",
        "on_hand": 7,
        "reserved": 0,
        "available": 7,
        "reorder_point": 0,
        "version": 1,
        "source": "database",
    }
    assert response["ETag"] == '"1"'
    assert response["X-Cache"] == "MISS"


def test_a_product_never_stocked_reads_as_a_zero_level(client, tee):
    response = client.get(f"{BASE}/stock/TEE/")

    assert response.json() == {
        "store": "berlin-01",
        "sku": "TEE",
        "product_name": "T-shirt",
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "reorder_point": 0,
        "version": 0,
        "updated_at": None,
        "source": "database",
    }
    assert response["ETag"] == '"0"'
    assert not StockLevel.objects.exists()


@pytest.mark.parametrize(
    "path, body, on_hand, kind",
    [
        ("receive", {"quantity": 5, "reference": "PO-9", "note": "pallet"}, 15, "receive"),
        ("adjust", {"delta": -2, "reason": "damaged"}, 8, "adjust"),
        ("set", {"on_hand": 12, "reason": "correction"}, 12, "set"),
        ("purchase", {"quantity": 3, "reference": "order-1"}, 7, "sale"),
    ],
)
def test_each_operation_answers_the_new_level(client, berlin, tee, path, body, on_hand, kind):
    stock_receive(store=berlin, product=tee, quantity=10)

    response = client.post(f"{BASE}/stock/TEE/{path}/", body, format="json")

    assert response.status_code == 200
    assert (response.json()["on_hand"], response.json()["version"]) == (on_hand, 2)
    assert response["ETag"] == '"2"'
    movement = Movement.objects.order_by("id").last()
    assert (movement.kind, movement.actor.username, movement.on_hand_after) == (
        kind,
        "manager",
        on_hand,
    )


def test_a_purchase_beyond_available_is_409_with_what_is_available(client, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=2)

    response = client.post(f"{BASE}/stock/TEE/purchase/", {"quantity": 3}, format="json")

    body = assert_error(response, 409, "insufficient_stock")
    assert body["available"] == 2
    assert body["shortages"] == [{"sku": "TEE", "requested": 3, "available": 2}]
    assert StockLevel.objects.get().version == 1


def test_set_with_if_match_is_a_compare_and_set(
    client, berlin, tee, django_capture_on_commit_callbacks
):
    stock_receive(store=berlin, product=tee, quantity=10)
    etag = client.get(f"{BASE}/stock/TEE/")["ETag"]
    with django_capture_on_commit_callbacks(execute=True):  # as at commit: cache refreshed
        stock_purchase(store=berlin, product=tee, quantity=1)

    stale = client.post(f"{BASE}/stock/TEE/set/", {"on_hand": 4}, format="json", HTTP_IF_MATCH=etag)
    fresh_etag = client.get(f"{BASE}/stock/TEE/")["ETag"]
    fresh = client.post(
        f"{BASE}/stock/TEE/set/", {"on_hand": 4}, format="json", HTTP_IF_MATCH=fresh_etag
    )

    assert assert_error(stale, 412, "version_mismatch")["current_version"] == 2
    assert (fresh.status_code, fresh.json()["on_hand"]) == (200, 4)
    assert fresh["ETag"] == '"3"'


def test_a_manager_sets_the_reorder_point_without_a_stock_movement(client, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=3)

    response = client.patch(f"{BASE}/stock/TEE/", {"reorder_point": 5}, format="json")

    assert (response.json()["reorder_point"], response.json()["version"]) == (5, 1)
    assert Movement.objects.count() == 1


@pytest.mark.parametrize(
    "query, skus",
    [
        ("", ["CAP", "MUG", "TEE"]),
        ("?sku=MUG", ["MUG"]),
        ("?low_stock=true", ["CAP", "MUG"]),
        ("?low_stock=false", ["TEE"]),
        ("?search=shirt", ["TEE"]),
    ],
)
def test_the_stock_list_filters(client, berlin, tee, query, skus, django_assert_num_queries):
    for product, quantity, reorder_point in (
        (tee, 10, 2),
        (ProductFactory(sku="MUG", name="Mug"), 2, 2),
        (ProductFactory(sku="CAP", name="Cap"), 1, 5),
    ):
        stock_receive(store=berlin, product=product, quantity=quantity)
        client.patch(
            f"{BASE}/stock/{product.sku}/", {"reorder_point": reorder_point}, format="json"
        )

    with django_assert_num_queries(2):  # count, page (the lookups are cached by now)
        response = client.get(f"{BASE}/stock/{query}")

    assert [level["sku"] for level in response.json()["results"]] == skus


def test_a_transfer_answers_both_sides(client, berlin, tee, manager):
    hamburg = StoreFactory(code="hamburg-01")
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)
    stock_receive(store=berlin, product=tee, quantity=10)

    response = client.post(
        f"{BASE}/transfers/",
        {"to_store": "hamburg-01", "lines": [{"sku": "TEE", "quantity": 4}], "note": "restock"},
        format="json",
    )

    body = response.json()
    assert response.status_code == 200
    assert body["reference"].startswith("transfer:")
    assert (body["from_store"], body["to_store"]) == ("berlin-01", "hamburg-01")
    assert body["lines"] == [{"sku": "TEE", "quantity": 4}]
    assert [(lvl["store"], lvl["on_hand"]) for lvl in body["source_levels"]] == [("berlin-01", 6)]
    assert [(lvl["store"], lvl["on_hand"]) for lvl in body["destination_levels"]] == [
        ("hamburg-01", 4)
    ]


def test_a_manager_transfers_to_any_active_store_without_being_its_member(
    client, berlin, tee, manager
):
    StoreFactory(code="hamburg-01")  # the manager is no member of it
    stock_receive(store=berlin, product=tee, quantity=10)

    response = client.post(
        f"{BASE}/transfers/",
        {"to_store": "hamburg-01", "lines": [{"sku": "TEE", "quantity": 4}]},
        format="json",
    )

    assert response.status_code == 200
    assert StockLevel.objects.get(store__code="hamburg-01").on_hand == 4


@pytest.mark.parametrize("to_store", ["nowhere-01", "closed-01"])
def test_a_transfer_to_an_unknown_or_inactive_store_is_400_naming_to_store(
    client, berlin, tee, to_store
):
    StoreFactory(code="closed-01", is_active=False)
    stock_receive(store=berlin, product=tee, quantity=10)

    response = client.post(
        f"{BASE}/transfers/",
        {"to_store": to_store, "lines": [{"sku": "TEE", "quantity": 4}]},
        format="json",
    )

    assert assert_error(response, 400, "invalid")["errors"] == {
        "to_store": ["No such active store."]
    }
    assert Movement.objects.count() == 1


def test_a_short_transfer_is_409_with_every_shortage(client, berlin, tee, manager):
    MembershipFactory(user=manager, store=StoreFactory(code="hamburg-01"), role=Role.VIEWER)
    ProductFactory(sku="MUG")
    stock_receive(store=berlin, product=tee, quantity=1)

    response = client.post(
        f"{BASE}/transfers/",
        {
            "to_store": "hamburg-01",
            "lines": [{"sku": "TEE", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
        },
        format="json",
    )

    body = assert_error(response, 409, "insufficient_stock")
    assert sorted(body["shortages"], key=lambda s: s["sku"]) == [
        {"sku": "MUG", "requested": 1, "available": 0},
        {"sku": "TEE", "requested": 2, "available": 1},
    ]
    assert StockLevel.objects.get(store=berlin).on_hand == 1


def test_the_ledger_lists_newest_first_and_filters(client, berlin, tee, manager):
    mug = ProductFactory(sku="MUG")
    stock_receive(store=berlin, product=tee, quantity=5, reference="PO-1", actor=manager)
    stock_receive(store=berlin, product=mug, quantity=2)
    stock_purchase(store=berlin, product=tee, quantity=1, reference="order-9")

    everything = client.get(f"{BASE}/movements/").json()["results"]
    sales = client.get(f"{BASE}/movements/?kind=sale").json()["results"]
    tees = client.get(f"{BASE}/movements/?sku=TEE").json()["results"]
    since = client.get(f"{BASE}/movements/", {"since": everything[0]["created_at"]})

    assert [(m["sku"], m["kind"]) for m in everything] == [
        ("TEE", "sale"),
        ("MUG", "receive"),
        ("TEE", "receive"),
    ]
    first = everything[-1]
    assert {k: v for k, v in first.items() if k not in {"id", "created_at"}} == {
        "sku": "TEE",
        "kind": "receive",
        "delta_on_hand": 5,
        "delta_reserved": 0,
        "on_hand_after": 5,
        "reserved_after": 0,
        "reason": "",
        "reference": "PO-1",
        "note": "",
        "actor": "manager",
    }
    assert [m["reference"] for m in sales] == ["order-9"]
    assert [m["kind"] for m in tees] == ["sale", "receive"]
    assert [m["kind"] for m in since.json()["results"]] == ["sale"]
    assert_error(client.get(f"{BASE}/movements/?since=yesterday"), 400)
    assert_error(client.get(f"{BASE}/movements/?kind=theft"), 400)


def test_the_ledger_page_counts_its_queries(client, berlin, tee, django_assert_num_queries):
    """The user by token, the store and the user's role there, the page: nothing is
    counted (cursor pagination)."""
    for _ in range(30):
        stock_receive(store=berlin, product=tee, quantity=1)

    with django_assert_num_queries(3):
        response = client.get(f"{BASE}/movements/")

    assert len(response.json()["results"]) == 30
    assert "count" not in response.json()


@pytest.mark.parametrize(
    "since, count",
    [
        ("2000-01-01T00:00:00-20:00", 1),  # offsets PostgreSQL refuses are read as UTC
        ("2000-01-01T00:00:00+16:00", 1),
        ("9000-01-01T00:00:00+16:00", 0),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC: 400
        ("9999-12-31T23:59:59-01:00", None),  # after year 9999 in UTC: 400
    ],
)
def test_a_since_with_an_extreme_offset_or_date_is_no_500(client, berlin, tee, since, count):
    stock_receive(store=berlin, product=tee, quantity=1)

    response = client.get(f"{BASE}/movements/", {"since": since})

    if count is None:
        assert list(assert_error(response, 400)["errors"]) == ["since"]
    else:
        assert (response.status_code, len(response.json()["results"])) == (200, count)


def test_the_browsable_api_offers_the_reorder_point_as_a_levels_patch_form(manager, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=3)
    client = Client()
    client.force_login(manager)

    page = client.get(f"{BASE}/stock/TEE/", HTTP_ACCEPT="text/html").content.decode()

    form = page[page.index('data-method="PUT"') :]
    form = form[: form.index("</form>")]
    assert "&quot;reorder_point&quot;" in form and 'data-method="PATCH"' in form
    assert "product_name" not in form
