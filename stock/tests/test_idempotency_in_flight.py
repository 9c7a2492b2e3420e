"""Idempotency-Key while the first request is still running, and when it failed or died
(stock.idempotency's docstring states the rule): a key never applies twice."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from stock import idempotency
from stock.idempotency import idempotently
from stock.models import IdempotencyRecord, Movement, StockLevel
from stock.services import stock_purchase, stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.concurrency import run_together
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # each request commits on its own

PURCHASE = "/api/v1/stores/berlin-01/stock/TEE/purchase/"


@pytest.fixture
def shop():
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=store, product=product, quantity=5)
    user = UserFactory(username="clerk")
    MembershipFactory(user=user, store=store, role=Role.CLERK)
    return store, product, user


@pytest.fixture
def short_wait(monkeypatch):
    monkeypatch.setattr(idempotency, "IN_FLIGHT_WAIT_SECONDS", 0.2)


def post(user, key, quantity=1):
    return api_client(user).post(
        PURCHASE, {"quantity": quantity}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def sales() -> int:
    return Movement.objects.filter(kind="sale").count()


def keyed_request(user, key, quantity=1) -> Request:
    """The DRF request a client sends with ``key``, for calling ``idempotently`` with an
    ``execute`` of the test's own."""
    django_request = APIRequestFactory().post(
        PURCHASE, {"quantity": quantity}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    request = Request(django_request, parsers=[JSONParser()])
    request.user = user
    return request


def sell(store, product, user):
    def execute():
        level = stock_purchase(store=store, product=product, quantity=1, actor=user)
        return Response({"on_hand": level.on_hand}, headers={"ETag": f'"{level.version}"'})

    return execute


# --- A duplicate while the first is in flight (PostgreSQL: a real row lock) ----------------


def race_against_a_held_row(user, *, hold_seconds: float):
    """Another connection locks the level; the first request (key "k") then waits for the
    row, and a second one with the same key arrives while it waits. Returns both answers
    and how long the second took."""
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        with transaction.atomic():
            list(StockLevel.objects.select_for_update())
            locked.set()
            release.wait(10)

    def first():
        locked.wait(10)
        return post(user, "k")

    def second():
        locked.wait(10)
        time.sleep(0.3)  # the first has claimed the key and waits for the row
        started = time.monotonic()
        response = post(user, "k")
        return response, time.monotonic() - started

    def release_later():
        locked.wait(10)
        time.sleep(hold_seconds)
        release.set()

    _, first_response, (second_response, waited), _ = run_together(
        [hold_the_row, first, second, release_later], timeout=30
    )
    return first_response, second_response, waited


@pytest.mark.postgresql
def test_a_duplicate_sent_while_the_first_runs_waits_and_replays_its_answer(shop, monkeypatch):
    monkeypatch.setattr(idempotency, "IN_FLIGHT_WAIT_SECONDS", 3)  # longer than the hold
    first, second, waited = race_against_a_held_row(shop[2], hold_seconds=1.0)

    assert (first.status_code, second.status_code) == (200, 200)
    assert not first.has_header("Idempotent-Replayed")
    assert second["Idempotent-Replayed"] == "true"
    assert (second.content, second["ETag"]) == (first.content, first["ETag"])
    assert waited > 0.5  # it waited for the first one's answer
    assert sales() == 1


@pytest.mark.postgresql
def test_a_duplicate_that_waits_too_long_is_told_to_retry(shop, short_wait):
    first, second, _ = race_against_a_held_row(shop[2], hold_seconds=1.5)

    assert first.status_code == 200
    assert_error(second, 409, "idempotency_key_in_flight")
    assert second["Retry-After"] == "1"
    retry = post(shop[2], "k")
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.content == first.content
    assert sales() == 1


# --- Failures --------------------------------------------------------------------------


def test_a_5xx_that_changed_nothing_frees_the_key(shop):
    store, product, user = shop

    failed = idempotently(None, keyed_request(user, "k"), lambda: Response(status=503))
    retried = idempotently(None, keyed_request(user, "k"), sell(store, product, user))

    assert failed.status_code == 503
    assert (retried.status_code, retried.data) == (200, {"on_hand": 4})
    assert not retried.has_header("Idempotent-Replayed")
    assert IdempotencyRecord.objects.get().response_status == 200
    assert sales() == 1


def test_a_5xx_after_the_change_committed_never_runs_the_key_again(shop, short_wait):
    store, product, user = shop

    def sell_then_fail():
        sell(store, product, user)()
        return Response(status=500)

    failed = idempotently(None, keyed_request(user, "k"), sell_then_fail)
    retried = post(user, "k")

    assert failed.status_code == 500
    assert_error(retried, 409, "idempotency_key_in_flight")
    assert IdempotencyRecord.objects.get().response_status is None  # kept, pending
    assert sales() == 1
    assert StockLevel.objects.get().on_hand == 4


def test_a_key_whose_request_died_is_unfinished_and_runs_nothing(shop):
    """What a process killed between the sale and storing its answer leaves behind."""
    _, _, user = shop
    long_ago = timezone.now() - idempotency.UNFINISHED_AFTER - timedelta(seconds=1)
    post(user, "k")
    IdempotencyRecord.objects.update(response_status=None, response_body=None, created_at=long_ago)

    started = time.monotonic()
    response = post(user, "k")

    assert_error(response, 409, "idempotency_key_unfinished")
    assert not response.has_header("Retry-After")
    assert time.monotonic() - started < idempotency.IN_FLIGHT_WAIT_SECONDS  # no waiting
    assert sales() == 1


def test_an_expired_pending_record_frees_the_key(shop):
    _, _, user = shop
    post(user, "k")
    IdempotencyRecord.objects.update(
        response_status=None,
        response_body=None,
        expires_at=timezone.now(),
        created_at=timezone.now() - idempotency.UNFINISHED_AFTER - timedelta(seconds=1),
    )

    response = post(user, "k")

    assert response.status_code == 200
    assert not response.has_header("Idempotent-Replayed")
    assert sales() == 2


def test_an_expired_pending_record_of_a_request_still_running_keeps_its_key(shop, short_wait):
    """A TTL shorter than a request: the record expired while its request may still run,
    so a retry must not run it again."""
    _, _, user = shop
    post(user, "k")
    IdempotencyRecord.objects.update(
        response_status=None, response_body=None, expires_at=timezone.now()
    )

    assert_error(post(user, "k"), 409, "idempotency_key_in_flight")
    assert idempotency.purge_expired_idempotency_records() == 0
    assert sales() == 1


def test_another_body_is_422_even_while_the_first_is_in_flight(shop):
    _, _, user = shop
    post(user, "k")
    IdempotencyRecord.objects.update(response_status=None, response_body=None)

    assert_error(post(user, "k", quantity=2), 422, "idempotency_key_reused")
    assert sales() == 1


@pytest.mark.postgresql("the guarded statement commits on its own on PostgreSQL")
def test_a_database_error_after_the_commit_never_frees_the_key(shop):
    """The sale committed, then the connection failed (as when the commit's
    acknowledgement is lost): the request answers 500, and a retry with its key must not
    sell again."""
    _, _, user = shop

    def fail_after_the_sale(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "UPDATE" in sql and "stock_stocklevel" in sql:
            raise OperationalError("server closed the connection unexpectedly")
        return result

    with connection.execute_wrapper(fail_after_the_sale):
        assert post(user, "k").status_code == 500
    assert sales() == 1  # committed before the failure

    assert_error(post(user, "k"), 409, "idempotency_key_in_flight")
    assert sales() == 1
