"""Many reorder points at once: one ordered lock round, every level audited, all or none."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditOutboxEntry
from stock.exceptions import InvalidStockOperation
from stock.models import StockLevel
from stock.services import stock_receive, stock_set_reorder_points
from tests.factories import ProductFactory


@pytest.fixture
def three_levels(store):
    products = [ProductFactory(sku=sku) for sku in ("A", "B", "C")]
    for product in products:
        stock_receive(store=store, product=product, quantity=5)
    return [(store, product) for product in products]


def test_every_level_gets_it_and_is_audited(three_levels):
    before = AuditOutboxEntry.objects.count()

    levels = stock_set_reorder_points(pairs=three_levels[::-1], reorder_point=4)

    assert [level.product.sku for level in levels] == ["A", "B", "C"]
    assert set(StockLevel.objects.values_list("reorder_point", flat=True)) == {4}
    assert AuditOutboxEntry.objects.count() - before == 3


def test_a_bad_value_changes_nothing(three_levels):
    with pytest.raises(InvalidStockOperation):
        stock_set_reorder_points(pairs=three_levels, reorder_point=-1)

    assert set(StockLevel.objects.values_list("reorder_point", flat=True)) == {0}


@pytest.mark.postgresql("SQLite has no row locks: Django leaves out FOR UPDATE there")
def test_the_rows_are_locked_in_one_primary_key_ordered_round(three_levels):
    with CaptureQueriesContext(connection) as queries:
        stock_set_reorder_points(pairs=three_levels[::-1], reorder_point=4)

    locks = [query["sql"] for query in queries if "FOR UPDATE" in query["sql"]]
    assert len(locks) == 1
    assert 'ORDER BY "stock_stocklevel"."id" ASC FOR UPDATE' in locks[0]
