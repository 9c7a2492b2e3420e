"""The outbox entry a movement gets in SQL (``movement_outbox_sql``, inside the stock
services' statements) is the one ``movement_audit_records`` builds in Python for the same
movement: both derive it from the movement row alone."""

import pytest
from django.db import connection

from audit.models import AuditOutboxEntry
from audit.services import (
    MOVEMENT_SOURCE_COLUMNS,
    audit_records,
    movement_audit_records,
    movement_outbox_params,
    movement_outbox_sql,
)
from stock.models import Movement
from stock.services import stock_adjust, stock_receive
from tests.factories import ProductFactory, StoreFactory, UserFactory

COMPARED = ["action", "actor_id", "actor_username", "store_id", "object_type", "object_id",
            "object_repr", "before", "after"]  # fmt: skip


def entries(ids) -> list[dict]:
    return list(AuditOutboxEntry.objects.filter(pk__in=ids).order_by("pk").values(*COMPARED))


@pytest.mark.postgresql("movement_outbox_sql is PostgreSQL's")
@pytest.mark.django_db
def test_the_sql_entry_of_a_movement_is_the_python_one(settings):
    settings.AUDIT_ENABLED = True
    clerk, store, product = UserFactory(), StoreFactory(), ProductFactory()
    stock_receive(store=store, product=product, quantity=7, actor=clerk)
    stock_adjust(store=store, product=product, delta=-2, reason="damaged", actor=clerk)
    movements = list(Movement.objects.select_related("store", "product").order_by("pk"))
    before = set(AuditOutboxEntry.objects.values_list("pk", flat=True))

    table = connection.ops.quote_name(Movement._meta.db_table)
    source = f"(SELECT {', '.join(MOVEMENT_SOURCE_COLUMNS)} FROM {table})"
    with connection.cursor() as cursor:
        cursor.execute(movement_outbox_sql(source), movement_outbox_params(actor=clerk))
    from_sql = set(AuditOutboxEntry.objects.values_list("pk", flat=True)) - before
    audit_records(movement_audit_records(movements), actor=clerk)
    from_python = set(AuditOutboxEntry.objects.values_list("pk", flat=True)) - before - from_sql

    assert len(from_sql) == len(movements) == 2
    assert entries(from_sql) == entries(from_python)
