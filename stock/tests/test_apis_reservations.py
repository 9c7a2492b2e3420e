"""The reservation endpoints of API.md, with their exact statuses and bodies."""

from datetime import timedelta

import pytest
from django.utils import timezone

from stock.models import Reservation, StockLevel
from stock.services import StockLine, reservation_create, stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

BASE = "/api/v1/stores/berlin-01/reservations/"


@pytest.fixture
def berlin(db):
    store = StoreFactory(code="berlin-01")
    for sku, quantity in (("TEE", 10), ("MUG", 2)):
        stock_receive(store=store, product=ProductFactory(sku=sku), quantity=quantity)
    return store


@pytest.fixture
def client(berlin):
    clerk = UserFactory(username="clerk")
    MembershipFactory(user=clerk, store=berlin, role=Role.CLERK)
    return api_client(clerk)


def reserve(client, lines, **extra):
    return client.post(BASE, {"lines": lines, **extra}, format="json")


def reserved(sku):
    return StockLevel.objects.get(store__code="berlin-01", product__sku=sku).reserved


def test_a_reservation_is_created_active(client):
    before = timezone.now()

    response = reserve(
        client,
        [
            {"sku": "TEE", "quantity": 2},
            {"sku": "MUG", "quantity": 1},
            {"sku": "TEE", "quantity": 1},
        ],
        ttl_seconds=600,
        reference="cart-1",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "active"
    assert body["store"] == "berlin-01"
    assert body["reference"] == "cart-1"
    assert sorted(body["lines"], key=lambda line: line["sku"]) == [
        {"sku": "MUG", "quantity": 1},
        {"sku": "TEE", "quantity": 3},
    ]
    expires_at = Reservation.objects.get(pk=body["id"]).expires_at
    assert timedelta(seconds=599) < expires_at - before < timedelta(seconds=601)
    assert (reserved("TEE"), reserved("MUG")) == (3, 1)


def test_a_short_reservation_is_409_with_the_shortages_and_holds_nothing(client):
    response = reserve(client, [{"sku": "TEE", "quantity": 2}, {"sku": "MUG", "quantity": 3}])

    body = assert_error(response, 409, "insufficient_stock")
    assert body["shortages"] == [{"sku": "MUG", "requested": 3, "available": 2}]
    assert not Reservation.objects.exists()
    assert reserved("TEE") == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"lines": [{"sku": "TEE", "quantity": 1}], "ttl_seconds": 0}, "ttl_seconds"),
        ({"lines": [{"sku": "TEE", "quantity": 1}], "ttl_seconds": 86_401}, "ttl_seconds"),
        ({"lines": [{"sku": "TEE", "quantity": 1}], "ttl_seconds": "60"}, "ttl_seconds"),
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": 0}]}, "lines"),
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "lines"),
        ({}, "lines"),
    ],
)
def test_a_bad_reservation_is_400(client, body, field):
    response = client.post(BASE, body, format="json")

    assert list(assert_error(response, 400)["errors"]) == [field]
    assert not Reservation.objects.exists()


def test_commit_answers_the_committed_reservation_and_again_the_same(client):
    created = reserve(client, [{"sku": "TEE", "quantity": 4}]).json()

    first = client.post(f"{BASE}{created['id']}/commit/")
    again = client.post(f"{BASE}{created['id']}/commit/")

    assert (first.status_code, first.json()["status"]) == (200, "committed")
    assert (again.status_code, again.json()) == (200, first.json())
    level = StockLevel.objects.get(product__sku="TEE")
    assert (level.on_hand, level.reserved) == (6, 0)


def test_release_answers_the_released_reservation(client):
    created = reserve(client, [{"sku": "TEE", "quantity": 4}]).json()

    response = client.post(f"{BASE}{created['id']}/release/")

    assert (response.status_code, response.json()["status"]) == (200, "released")
    assert reserved("TEE") == 0


@pytest.mark.parametrize(
    "first, then, status",
    [
        ("commit", "release", "committed"),
        ("release", "commit", "released"),
        ("release", "release", "released"),
    ],
)
def test_finishing_a_closed_reservation_is_409(client, first, then, status):
    created = reserve(client, [{"sku": "TEE", "quantity": 4}]).json()
    client.post(f"{BASE}{created['id']}/{first}/")

    response = client.post(f"{BASE}{created['id']}/{then}/")

    body = assert_error(response, 409, "reservation_not_active")
    assert body["status"] == status


@pytest.mark.parametrize("action", ["commit", "release"])
def test_finishing_a_hold_past_its_expiry_is_409_and_leaves_it_expired(client, action):
    created = reserve(client, [{"sku": "TEE", "quantity": 4}]).json()
    Reservation.objects.filter(pk=created["id"]).update(expires_at=timezone.now())

    response = client.post(f"{BASE}{created['id']}/{action}/")

    assert assert_error(response, 409, "reservation_not_active")["status"] == "expired"
    assert Reservation.objects.get(pk=created["id"]).status == "expired"
    assert client.get(f"{BASE}{created['id']}/").json()["status"] == "expired"
    assert reserved("TEE") == 0


def test_the_list_filters_by_status_and_shows_due_holds_as_expired(client, berlin):
    tee = berlin.stock_levels.get(product__sku="TEE").product
    active, due, done = (
        reservation_create(store=berlin, lines=[StockLine(tee, 1)], ttl_seconds=600)
        for _ in range(3)
    )
    Reservation.objects.filter(pk=due.pk).update(expires_at=timezone.now())
    client.post(f"{BASE}{done.pk}/commit/")

    def ids(query=""):
        return {r["id"] for r in client.get(f"{BASE}{query}").json()["results"]}

    assert ids() == {str(active.pk), str(due.pk), str(done.pk)}
    assert ids("?status=active") == {str(active.pk)}
    assert ids("?status=expired") == {str(due.pk)}
    assert ids("?status=committed") == {str(done.pk)}
    assert_error(client.get(f"{BASE}?status=lost"), 400)


def test_an_unknown_or_foreign_reservation_is_404(client):
    other = StoreFactory(code="hamburg-01")
    mug = ProductFactory(sku="CUP")
    stock_receive(store=other, product=mug, quantity=1)
    foreign = reservation_create(store=other, lines=[StockLine(mug, 1)])

    assert_error(client.get(f"{BASE}{foreign.pk}/"), 404)
    assert_error(client.post(f"{BASE}{foreign.pk}/commit/"), 404)
    assert_error(client.get(f"{BASE}00000000-0000-0000-0000-000000000000/"), 404)
    assert_error(client.get(f"{BASE}not-a-uuid/"), 404)
    assert Reservation.objects.get(pk=foreign.pk).status == "active"


def test_a_viewer_reads_reservations_but_cannot_hold_stock(berlin):
    viewer = UserFactory(username="viewer")
    MembershipFactory(user=viewer, store=berlin, role=Role.VIEWER)
    client = api_client(viewer)

    assert client.get(BASE).status_code == 200
    assert_error(reserve(client, [{"sku": "TEE", "quantity": 1}]), 403)


def test_a_reservation_post_is_idempotent(client):
    body = {"lines": [{"sku": "TEE", "quantity": 2}]}

    first = client.post(BASE, body, format="json", HTTP_IDEMPOTENCY_KEY="cart-9")
    retry = client.post(BASE, body, format="json", HTTP_IDEMPOTENCY_KEY="cart-9")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert Reservation.objects.count() == 1
    assert reserved("TEE") == 2


def test_the_reservation_list_counts_its_queries(client, berlin, django_assert_num_queries):
    tee = berlin.stock_levels.get(product__sku="TEE").product
    for _ in range(5):
        reservation_create(store=berlin, lines=[StockLine(tee, 1)])

    with django_assert_num_queries(5):  # token user, store and role, count, page, lines
        response = client.get(BASE)

    assert len(response.json()["results"]) == 5
