"""The per-store stock event log.

Every committed stock change (one Movement) is one StockEvent, written in the same
transaction, and so is every change of a level's reorder point (no Movement: it moves no
unit, but a level can become low by it): ``seq`` numbers a store's events 1, 2, 3, ...
with no gap, in the order their transactions committed, because the store's
``StoreEventSequence`` row is locked from the moment a change takes its number until
that change commits (a rolled-back change gives its number back). Clients read the log
with ``seq`` as a cursor; webhooks and the live stream deliver it.
"""

from django.db import models

from catalog.models import Product
from stores.models import Store


class EventType(models.TextChoices):
    CHANGED = "stock.changed", "Stock changed"
    LOW = "stock.low", "Fell to or below the reorder point"
    OUT = "stock.out", "Sold out"
    BACK_IN_STOCK = "stock.back_in_stock", "Back in stock"


def event_type(
    available_before: int,
    available_after: int,
    reorder_point: int,
    reorder_point_before: int | None = None,
) -> EventType:
    """What a change of a level's available units from ``available_before`` to
    ``available_after`` means, the most specific first: it ran out, it came back, it fell
    to or below the reorder point, or it just changed. ``reorder_point_before`` is the
    reorder point before the change when the change moved it (by default the same):
    raising it above what is available makes the level low without a unit moving.
    ``event_type_sql`` says the same in SQL."""
    if reorder_point_before is None:
        reorder_point_before = reorder_point
    if available_after == 0 and available_before > 0:
        return EventType.OUT
    if available_before == 0 and available_after > 0:
        return EventType.BACK_IN_STOCK
    if available_after <= reorder_point and reorder_point_before < available_before:
        return EventType.LOW
    return EventType.CHANGED


def event_type_sql(
    before: str, after: str, reorder_point: str, reorder_point_before: str | None = None
) -> str:
    """``event_type`` as a SQL CASE over three (or four) SQL expressions."""
    if reorder_point_before is None:
        reorder_point_before = reorder_point
    return f"""CASE
        WHEN ({after}) = 0 AND ({before}) > 0 THEN '{EventType.OUT.value}'
        WHEN ({before}) = 0 AND ({after}) > 0 THEN '{EventType.BACK_IN_STOCK.value}'
        WHEN ({after}) <= ({reorder_point}) AND ({reorder_point_before}) < ({before})
             THEN '{EventType.LOW.value}'
        ELSE '{EventType.CHANGED.value}' END"""


class StoreEventSequence(models.Model):
    """The last ``seq`` a store's events used. Locked by each change that takes numbers,
    until it commits: after every stock level lock of that change (``stock.services``
    takes level locks first, then these rows in store id order), so that no two
    transactions wait for each other in a circle."""

    store = models.OneToOneField(
        Store, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(last_seq__gte=0), name="storeeventsequence_last_seq_non_negative"
            )
        ]


class StockEvent(models.Model):
    """One committed change of one stock level, as its store's event number ``seq``.

    The values are the level's after the change; ``reorder_point`` is the one the change
    was judged against. ``movement_id`` names the ledger row of the change (the ledger
    keeps it for good; events are pruned after ``STOCK_EVENT_RETENTION_DAYS``); it is
    empty for a change of the reorder point, which moves no stock: such an event keeps
    the level's ``version`` (the number of its movements) and has the new reorder point.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+", db_index=False)
    seq = models.BigIntegerField()
    type = models.CharField(max_length=24, choices=EventType.choices)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", db_index=False)
    on_hand = models.BigIntegerField()
    reserved = models.BigIntegerField()
    available = models.BigIntegerField()
    reorder_point = models.BigIntegerField()
    version = models.BigIntegerField()
    movement_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["store", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["store", "seq"], name="stockevent_store_seq_unique"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="stockevent_seq_positive"),
            models.CheckConstraint(
                condition=models.Q(type__in=EventType.values), name="stockevent_type_valid"
            ),
        ]
        indexes = [models.Index(fields=["at"], name="stockevent_at_idx")]

    def __str__(self):
        return f"{self.store_id}:{self.seq} {self.type}"


# The webhooks' tables belong to this app; their models live in their own package.
from .webhooks.models import (  # noqa: E402, F401
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
