import logging

import pytest

from stock.exceptions import InsufficientStock
from stock.models import MovementKind
from stock.services import StockLine, stock_purchase, stock_receive, stock_transfer
from stock.signals import stock_changed


@pytest.fixture
def received():
    """Every stock_changed the test causes, as (kind, [(store code, sku, on_hand, version)])."""
    calls = []

    def receiver(sender, kind, levels, **kwargs):
        calls.append(
            (kind, [(lvl.store.code, lvl.product.sku, lvl.on_hand, lvl.version) for lvl in levels])
        )

    stock_changed.connect(receiver)
    yield calls
    stock_changed.disconnect(receiver)


def test_stock_changed_is_sent_after_commit_with_the_new_values(
    store, product, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stock_receive(store=store, product=product, quantity=3)
    assert received == []

    for callback in callbacks:
        callback()

    assert received == [(MovementKind.RECEIVE, [("berlin-01", "TEE-RED-M", 3, 1)])]


def test_a_transfer_announces_both_stores(
    store, other_store, product, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(store=store, product=product, quantity=3)
    with django_capture_on_commit_callbacks(execute=True):
        stock_transfer(from_store=store, to_store=other_store, lines=[StockLine(product, 2)])

    assert received[-1] == (
        MovementKind.TRANSFER_OUT,
        [("berlin-01", "TEE-RED-M", 1, 2), ("hamburg-01", "TEE-RED-M", 2, 1)],
    )


def test_a_refused_change_announces_nothing(
    store, product, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(InsufficientStock):
            stock_purchase(store=store, product=product, quantity=1)

    assert callbacks == []
    assert received == []


def test_a_failing_receiver_is_logged_and_the_change_stands(
    store, product, django_capture_on_commit_callbacks, caplog
):
    def broken_receiver(sender, **kwargs):
        raise ConnectionError("cache is down")

    stock_changed.connect(broken_receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="stock.services"):
            with django_capture_on_commit_callbacks(execute=True):
                level = stock_receive(store=store, product=product, quantity=3)
    finally:
        stock_changed.disconnect(broken_receiver)

    assert level.on_hand == 3
    assert "stock_changed receiver" in caplog.text
    assert "cache is down" in caplog.text
