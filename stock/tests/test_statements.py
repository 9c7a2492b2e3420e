"""The SQL a stock write costs (PostgreSQL), counted statement by statement.

A hot row stays locked until the transaction that locked it ends, so what counts is the
statements sent while a lock is held, and whether Django wrapped them in BEGIN ... COMMIT
(two more round trips under the lock). ``record_statements`` (root conftest) lists each
statement and whether it ran as its own transaction.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditOutboxEntry
from stock.exceptions import InsufficientStock, Shortage
from stock.models import (
    IdempotencyRecord,
    Movement,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
)
from stock.services import (
    StockLine,
    reservation_commit,
    reservation_create,
    stock_purchase,
    stock_receive,
    stock_transfer,
)
from stores.models import Role
from tests.api import api_client
from tests.concurrency import run_together
from tests.factories import MembershipFactory, ProductFactory

pytestmark = [
    pytest.mark.postgresql("autocommit and row locks are PostgreSQL's here"),
    pytest.mark.services(
        "with Celery run in-process the audit relay's own SQL would run inside the block"
    ),
    pytest.mark.django_db(transaction=True),  # no test transaction around: real autocommit
]

LEVELS = StockLevel._meta.db_table
MOVEMENTS = Movement._meta.db_table
OUTBOX = AuditOutboxEntry._meta.db_table
KEYS = IdempotencyRecord._meta.db_table
PURCHASE = "/api/v1/stores/berlin-01/stock/TEE-RED-M/purchase/"


@pytest.fixture
def third_product(db):
    return ProductFactory(sku="CAP")


@pytest.fixture
def member(store, clerk):
    MembershipFactory(user=clerk, store=store, role=Role.MANAGER)
    return clerk


def is_guarded(statement) -> bool:
    """The purchase's statement: guarded UPDATE, movement INSERT, outbox INSERT."""
    return statement.sql.lstrip().startswith("WITH changed AS (") and all(
        statement.touches(table) for table in (LEVELS, MOVEMENTS, OUTBOX)
    )


def shape(statement) -> tuple[str, str]:
    """The statement's first word, and the stock table it is about."""
    verb = statement.sql.split(None, 1)[0].upper()
    if is_guarded(statement):
        return verb, "guarded"
    return verb, next(table for table in (KEYS, LEVELS, MOVEMENTS) if statement.touches(table))


def about_stock(statements) -> list:
    """The statements about stock or Idempotency-Keys, not about who is asking."""
    return [s for s in statements if any(s.touches(t) for t in (KEYS, LEVELS, MOVEMENTS))]


def count(statements, fragment: str) -> int:
    return sum(fragment in statement.sql for statement in statements)


def on_hand_seen_by_another_connection() -> int:
    [on_hand] = run_together([lambda: StockLevel.objects.get().on_hand])
    return on_hand


# --- A purchase ------------------------------------------------------------------------


def test_a_purchase_is_one_statement_committed_by_itself(store, product, clerk, record_statements):
    stock_receive(store=store, product=product, quantity=5)

    with record_statements() as statements:
        level = stock_purchase(store=store, product=product, quantity=2, actor=clerk)

    assert level.on_hand == 3
    assert len(statements) == 1
    assert is_guarded(statements[0])
    assert statements[0].own_transaction  # no BEGIN, no COMMIT: autocommit
    assert connection.get_autocommit() and not connection.in_atomic_block
    assert on_hand_seen_by_another_connection() == 3  # committed as the statement ended
    assert Movement.objects.filter(kind=MovementKind.SALE).count() == 1
    assert AuditOutboxEntry.objects.filter(action="stock.sale").count() == 1


def test_a_purchase_inside_a_callers_transaction_joins_it(store, product, clerk, record_statements):
    stock_receive(store=store, product=product, quantity=5)

    with record_statements() as statements, transaction.atomic():
        stock_purchase(store=store, product=product, quantity=2, actor=clerk)

    assert [s.sql.split(None, 1)[0] for s in statements] == ["SAVEPOINT", "WITH", "RELEASE"]
    assert not any(s.own_transaction for s in statements)
    assert StockLevel.objects.get().on_hand == 3


def test_a_sold_out_purchase_is_two_plain_statements(store, product, clerk, record_statements):
    """An active hold that is not due yet: it frees nothing, so nothing is locked."""
    stock_receive(store=store, product=product, quantity=3)
    reservation_create(store=store, lines=[StockLine(product, 1)], ttl_seconds=600)
    stock_purchase(store=store, product=product, quantity=2, actor=clerk)

    with record_statements() as statements, pytest.raises(InsufficientStock) as refused:
        stock_purchase(store=store, product=product, quantity=1, actor=clerk)

    assert refused.value.shortages == [Shortage(product.sku, requested=1, available=0)]
    assert len(statements) == 2
    guarded, select = statements
    assert is_guarded(guarded)
    assert select.sql.lstrip().startswith("SELECT")
    assert not any(s.locks for s in statements)
    assert all(s.own_transaction for s in statements)
    assert StockLevel.objects.get().version == 3


def test_a_sold_out_purchase_with_a_due_hold_expires_it_and_sells(
    store, product, clerk, record_statements
):
    """The control of the test above: with a due hold the locking retry does run."""
    stock_receive(store=store, product=product, quantity=1)
    hold = reservation_create(store=store, lines=[StockLine(product, 1)], ttl_seconds=600)
    Reservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    with record_statements() as statements:
        level = stock_purchase(store=store, product=product, quantity=1, actor=clerk)

    assert (level.on_hand, level.reserved) == (0, 0)
    assert Reservation.objects.get(pk=hold.pk).status == ReservationStatus.EXPIRED
    assert is_guarded(statements[0]) and statements[0].own_transaction
    assert any(s.locks for s in statements)
    assert not any(s.own_transaction for s in statements[2:])  # the retry is one transaction


# --- Over HTTP, with and without an Idempotency-Key ---------------------------------------


def test_a_purchase_with_a_key_locks_the_row_for_its_statement_only(
    store, product, member, record_statements
):
    stock_receive(store=store, product=product, quantity=5)
    client = api_client(member)

    with record_statements() as statements:
        first = client.post(PURCHASE, {"quantity": 2}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == 200, first.content
    assert [shape(s) for s in about_stock(statements)] == [
        ("INSERT", KEYS),  # the pending record, committed before any stock row is touched
        ("WITH", "guarded"),  # the sale: the only statement while the row is locked
        ("UPDATE", KEYS),  # the answer, stored once the row lock is gone
    ]
    assert all(s.own_transaction for s in statements)
    assert not any(s.locks for s in statements)

    with record_statements() as statements:
        replay = client.post(PURCHASE, {"quantity": 2}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert [shape(s) for s in about_stock(statements)] == [("INSERT", KEYS), ("SELECT", KEYS)]
    assert replay["Idempotent-Replayed"] == "true"
    assert (replay.status_code, replay.content, replay["ETag"]) == (
        first.status_code,
        first.content,
        first["ETag"],
    )
    assert StockLevel.objects.get().on_hand == 3


def test_a_sold_out_purchase_over_http_locks_nothing(store, product, member, record_statements):
    stock_receive(store=store, product=product, quantity=1)
    client = api_client(member)
    client.post(PURCHASE, {"quantity": 1}, format="json")

    with record_statements() as statements:
        response = client.post(PURCHASE, {"quantity": 1}, format="json")

    assert response.status_code == 409
    assert response.json()["available"] == 0
    assert [shape(s) for s in about_stock(statements)] == [("WITH", "guarded"), ("SELECT", LEVELS)]
    assert not any(s.locks for s in statements)
    assert all(s.own_transaction for s in statements)


# --- Many rows: one ordered lock round, then one statement each -------------------------


def assert_one_round_per_kind(statements):
    """One SELECT ... FOR UPDATE of the levels, then ONE UPDATE of them, then ONE INSERT
    of the movements and one of the audit outbox entries, all in one transaction."""
    level_locks = [i for i, s in enumerate(statements) if s.locks and s.touches(LEVELS)]
    level_updates = [i for i, s in enumerate(statements) if f'UPDATE "{LEVELS}"' in s.sql]
    movement_inserts = [
        i for i, s in enumerate(statements) if f'INSERT INTO "{MOVEMENTS}"' in s.sql
    ]
    assert (len(level_locks), len(level_updates), len(movement_inserts)) == (1, 1, 1)
    assert level_locks[0] < level_updates[0] < movement_inserts[0]
    assert count(statements, f'INSERT INTO "{OUTBOX}"') == 1
    assert not any(s.own_transaction for s in statements)


def test_a_transfer_of_three_lines_is_one_update_and_one_insert(
    store, other_store, product, other_product, third_product, clerk, record_statements
):
    products = [product, other_product, third_product]
    for item in products:
        stock_receive(store=store, product=item, quantity=5)

    with record_statements() as statements:
        transfer = stock_transfer(
            from_store=store,
            to_store=other_store,
            lines=[
                StockLine(item, quantity)
                for item, quantity in zip(products, (1, 2, 3), strict=True)
            ],
            actor=clerk,
        )

    assert_one_round_per_kind(statements)
    assert [level.on_hand for level in transfer.source_levels] == [4, 3, 2]
    assert [level.on_hand for level in transfer.destination_levels] == [1, 2, 3]
    assert Movement.objects.filter(reference=transfer.reference).count() == 6
    assert AuditOutboxEntry.objects.filter(action__startswith="stock.transfer").count() == 6


def test_a_reservation_of_three_lines_and_its_commit_are_one_update_each(
    store, product, other_product, third_product, clerk, record_statements
):
    products = [product, other_product, third_product]
    for item in products:
        stock_receive(store=store, product=item, quantity=5)

    with record_statements() as statements:
        reservation = reservation_create(
            store=store, lines=[StockLine(item, 2) for item in products], actor=clerk
        )

    assert_one_round_per_kind(statements)
    assert list(StockLevel.objects.order_by("pk").values_list("reserved", flat=True)) == [2] * 3

    with record_statements() as statements:
        reservation_commit(reservation=reservation, actor=clerk)

    assert_one_round_per_kind(statements)
    levels = StockLevel.objects.order_by("pk").values_list("on_hand", "reserved", "version")
    assert list(levels) == [(3, 0, 3)] * 3


def test_a_reservation_of_three_lines_over_http(
    store, product, other_product, third_product, member, record_statements
):
    for item in (product, other_product, third_product):
        stock_receive(store=store, product=item, quantity=5)
    lines = [{"sku": sku, "quantity": 1} for sku in ("TEE-RED-M", "MUG-BLUE", "CAP")]

    with record_statements() as statements:
        response = api_client(member).post(
            "/api/v1/stores/berlin-01/reservations/", {"lines": lines}, format="json"
        )

    assert response.status_code == 201, response.content
    assert count(statements, f'UPDATE "{LEVELS}"') == 1
    assert count(statements, f'INSERT INTO "{MOVEMENTS}"') == 1
    assert sum(s.locks and s.touches(LEVELS) for s in statements) == 1
