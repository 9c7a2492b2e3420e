"""The event log's writer as the tests play it until ``stock.services`` writes events:
numbers taken from the store's sequence row under its lock, the events inserted in the
same transaction, ``stock_events_committed`` sent after the commit. Imported by the
tests and by writer processes they start (``python manage.py shell -c``)."""

from django.db import transaction
from django.db.models import F

from events.models import StockEvent, StoreEventSequence
from events.signals import stock_events_committed
from tests.factories import StockEventFactory


def commit_events(store, product, count: int = 1, *, publish: bool = True) -> list[StockEvent]:
    """``count`` events of ``product`` in ``store`` in one transaction; ``publish=False``
    commits them without the signal, as a writer whose publish was lost."""
    with transaction.atomic():
        StoreEventSequence.objects.get_or_create(store=store)
        StoreEventSequence.objects.filter(store=store).update(last_seq=F("last_seq") + count)
        last = StoreEventSequence.objects.get(store=store).last_seq
        events = [
            StockEventFactory(store=store, product=product, seq=seq)
            for seq in range(last - count + 1, last + 1)
        ]
        if publish:
            transaction.on_commit(
                lambda: stock_events_committed.send(sender=StockEvent, events=events)
            )
    return events


# What a writer process runs: WRITER_SCRIPT.format(store=..., product=..., commits=...,
# per_commit=...).
WRITER_SCRIPT = """
from catalog.models import Product
from stores.models import Store
from events.tests.stream.writer import commit_events
store, product = Store.objects.get(pk={store}), Product.objects.get(pk={product})
for _ in range({commits}):
    commit_events(store, product, {per_commit})
print("written")
"""
