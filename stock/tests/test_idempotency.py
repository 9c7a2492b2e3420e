"""Idempotency-Key on the stock POSTs (API.md, "Idempotency")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from stock.idempotency import purge_expired_idempotency_records
from stock.models import IdempotencyRecord, Movement, StockLevel
from stock.services import stock_receive
from stock.tasks import purge_idempotency_records
from stores.models import Role
from stores.services import membership_grant, membership_revoke
from tests.api import api_client, assert_error
from tests.concurrency import run_together
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

PURCHASE = "/api/v1/stores/berlin-01/stock/TEE/purchase/"
RECEIVE = "/api/v1/stores/berlin-01/stock/TEE/receive/"


@pytest.fixture
def store_with_stock(db):
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=store, product=product, quantity=5)
    return store, product


def manager_of(store, username="manager"):
    user = UserFactory(username=username)
    MembershipFactory(user=user, store=store, role=Role.MANAGER)
    return user


def post(client, path, body, key):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def sales():
    return Movement.objects.filter(kind="sale").count()


def test_a_retry_gets_the_stored_answer_and_changes_nothing(store_with_stock):
    client = api_client(manager_of(store_with_stock[0]))

    first = post(client, PURCHASE, {"quantity": 2}, "order-1")
    retry = post(client, PURCHASE, {"quantity": 2}, "order-1")

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    assert first.json()["on_hand"] == 3
    assert "Idempotent-Replayed" not in first
    assert retry["Idempotent-Replayed"] == "true"
    assert sales() == 1
    assert StockLevel.objects.get().on_hand == 3


def test_key_order_and_whitespace_of_the_body_do_not_matter(store_with_stock):
    client = api_client(manager_of(store_with_stock[0]))
    post(client, PURCHASE, {"quantity": 1, "reference": "r"}, "k")

    retry = client.post(
        PURCHASE,
        '{ "reference": "r",   "quantity": 1 }',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )

    assert retry["Idempotent-Replayed"] == "true"
    assert sales() == 1


def test_the_same_key_with_another_body_is_422(store_with_stock):
    client = api_client(manager_of(store_with_stock[0]))
    post(client, PURCHASE, {"quantity": 2}, "order-1")

    response = post(client, PURCHASE, {"quantity": 3}, "order-1")

    assert_error(response, 422, "idempotency_key_reused")
    assert sales() == 1


def test_the_same_key_on_another_endpoint_is_422(store_with_stock):
    client = api_client(manager_of(store_with_stock[0]))
    post(client, PURCHASE, {"quantity": 1}, "k")

    response = post(client, RECEIVE, {"quantity": 1}, "k")

    assert_error(response, 422, "idempotency_key_reused")
    assert StockLevel.objects.get().version == 2


def test_keys_are_scoped_to_the_user(store_with_stock):
    store = store_with_stock[0]
    alice, bob = api_client(manager_of(store, "alice")), api_client(manager_of(store, "bob"))

    post(alice, PURCHASE, {"quantity": 1}, "shared-key")
    response = post(bob, PURCHASE, {"quantity": 1}, "shared-key")

    assert "Idempotent-Replayed" not in response
    assert sales() == 2


def test_a_refusal_is_replayed_too(store_with_stock):
    """The answer to a key is fixed once given, even if stock arrives in between."""
    store, product = store_with_stock
    client = api_client(manager_of(store))
    refused = post(client, PURCHASE, {"quantity": 9}, "k")
    stock_receive(store=store, product=product, quantity=10)

    retry = post(client, PURCHASE, {"quantity": 9}, "k")

    assert (refused.status_code, retry.status_code) == (409, 409)
    assert retry.json() == refused.json()
    assert sales() == 0


def test_an_expired_key_runs_again(store_with_stock):
    client = api_client(manager_of(store_with_stock[0]))
    post(client, PURCHASE, {"quantity": 1}, "k")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post(client, PURCHASE, {"quantity": 1}, "k")

    assert "Idempotent-Replayed" not in response
    assert sales() == 2


def test_records_expire_after_24_hours_and_are_purged(store_with_stock):
    client = api_client(manager_of(store_with_stock[0]))
    post(client, PURCHASE, {"quantity": 1}, "old")
    post(client, PURCHASE, {"quantity": 1}, "new")
    record = IdempotencyRecord.objects.get(key="old")
    assert record.expires_at - record.created_at == timedelta(hours=24)
    IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now())

    assert purge_expired_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.parametrize("key", ["", "k" * 256, "order\x01", "заказ-1"])
def test_a_key_of_bad_length_is_400(store_with_stock, key):
    client = api_client(manager_of(store_with_stock[0]))

    response = post(client, PURCHASE, {"quantity": 1}, key)

    assert list(assert_error(response, 400)["errors"]) == ["Idempotency-Key"]
    assert sales() == 0


def test_a_transfer_is_idempotent(store_with_stock):
    store = store_with_stock[0]
    StoreFactory(code="hamburg-01")
    client = api_client(manager_of(store))
    body = {"to_store": "hamburg-01", "lines": [{"sku": "TEE", "quantity": 2}]}

    first = post(client, "/api/v1/stores/berlin-01/transfers/", body, "t-1")
    retry = post(client, "/api/v1/stores/berlin-01/transfers/", body, "t-1")

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    assert Movement.objects.filter(kind="transfer_out").count() == 1
    assert StockLevel.objects.get(store=store).on_hand == 3


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_identical_requests_racing_with_one_key_have_exactly_one_effect():
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=store, product=product, quantity=100)
    user = manager_of(store)

    for round_number in range(5):

        def buy(key=f"race-{round_number}"):
            return post(api_client(user), PURCHASE, {"quantity": 1}, key)

        responses = run_together([buy] * 8)

        assert [r.status_code for r in responses] == [200] * 8
        assert len({r.content for r in responses}) == 1
        assert sum(r.has_header("Idempotent-Replayed") for r in responses) == 7
    assert sales() == 5
    assert StockLevel.objects.get().on_hand == 95


def test_beat_purges_expired_records_hourly(store_with_stock, settings):
    client = api_client(manager_of(store_with_stock[0]))
    post(client, PURCHASE, {"quantity": 1}, "old")
    IdempotencyRecord.objects.update(expires_at=timezone.now())

    assert settings.CELERY_BEAT_SCHEDULE["purge-idempotency-records"] == {
        "task": "stock.tasks.purge_idempotency_records",
        "schedule": 3600,
    }
    assert purge_idempotency_records() == 1
    assert not IdempotencyRecord.objects.exists()


def test_a_replay_carries_the_etag_of_the_first_answer(store_with_stock):
    client = api_client(manager_of(store_with_stock[0]))

    first = post(client, PURCHASE, {"quantity": 2}, "order-1")
    post(client, RECEIVE, {"quantity": 5}, "delivery-1")  # the level moves on
    retry = post(client, PURCHASE, {"quantity": 2}, "order-1")

    assert retry["Idempotent-Replayed"] == "true"
    assert first["ETag"] == retry["ETag"] == '"2"'


@pytest.mark.parametrize(
    "then, status",
    [
        (lambda store, user: membership_revoke(store=store, user=user, actor=None), 404),
        (
            lambda store, user: membership_grant(
                store=store, user=user, role=Role.VIEWER, actor=None
            ),
            403,
        ),
    ],
    ids=["membership revoked", "lowered to viewer"],
)
def test_a_replay_needs_the_access_the_request_needs_now(store_with_stock, then, status):
    store, _ = store_with_stock
    clerk = UserFactory(username="clerk")
    MembershipFactory(user=clerk, store=store, role=Role.CLERK)
    client = api_client(clerk)
    assert post(client, PURCHASE, {"quantity": 2}, "order-1").status_code == 200

    then(store, clerk)
    retry = post(client, PURCHASE, {"quantity": 2}, "order-1")

    assert_error(retry, status)
    assert "Idempotent-Replayed" not in retry
    assert sales() == 1
