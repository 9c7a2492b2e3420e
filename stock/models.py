"""Stock levels and their ledger.

Only ``stock.services`` writes these tables. The invariants the services keep are also
constraints of the database, so that no other path (a raw SQL session, a future bug)
can store a negative or over-reserved level.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Product
from stores.models import Store

# The one definition of low stock: a level at or below its reorder point.
LOW_STOCK = Q(available__lte=F("reorder_point"))


class StockLevel(models.Model):
    """How many units of one product one store holds.

    ``version`` counts the changes to ``on_hand`` and ``reserved``: each one writes
    exactly one Movement, whose ``version_after`` is the new version.
    """

    # Indexed by the (store, product) unique constraint, which leads with store.
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="stock_levels", db_index=False
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock_levels")
    on_hand = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)
    available = models.GeneratedField(
        expression=F("on_hand") - F("reserved"),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )
    reorder_point = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["store", "product"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "product"], name="stocklevel_store_product_unique"
            ),
            models.CheckConstraint(
                condition=Q(on_hand__gte=0), name="stocklevel_on_hand_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="stocklevel_reserved_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")),
                name="stocklevel_reserved_within_on_hand",
            ),
            models.CheckConstraint(
                condition=Q(reorder_point__gte=0),
                name="stocklevel_reorder_point_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(version__gte=0), name="stocklevel_version_non_negative"
            ),
        ]

    def __str__(self):
        return f"{self.product.sku} @ {self.store.code}"

    @property
    def is_low(self) -> bool:
        """``LOW_STOCK`` for a level in hand."""
        return self.available <= self.reorder_point


class MovementKind(models.TextChoices):
    RECEIVE = "receive", "Receive"
    ADJUST = "adjust", "Adjust"
    SET = "set", "Set count"
    SALE = "sale", "Sale"
    RESERVE = "reserve", "Reserve"
    RELEASE = "release", "Release"
    EXPIRE = "expire", "Expire"
    COMMIT = "commit", "Commit"
    TRANSFER_OUT = "transfer_out", "Transfer out"
    TRANSFER_IN = "transfer_in", "Transfer in"
    IMPORT = "import", "Import"


class AdjustmentReason(models.TextChoices):
    RECEIVED = "received", "Received"
    DAMAGED = "damaged", "Damaged"
    LOST = "lost", "Lost"
    FOUND = "found", "Found"
    RETURNED = "returned", "Returned"
    CORRECTION = "correction", "Correction"


class Movement(models.Model):
    """One change to one stock level: the ledger, append-only.

    Written in the same transaction as the change it records. Summing ``delta_on_hand``
    and ``delta_reserved`` over a level's movements gives its ``on_hand`` and
    ``reserved`` (``manage.py verify_ledger`` checks this).
    """

    # Indexed by movement_store_newest and the other indexes leading with the store.
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    delta_on_hand = models.BigIntegerField()
    delta_reserved = models.BigIntegerField()
    on_hand_after = models.BigIntegerField()
    reserved_after = models.BigIntegerField()
    version_after = models.BigIntegerField()
    reason = models.CharField(max_length=32, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        # Each of the ledger list's filters reads its rows from an index in id order
        # (stock.filters.MovementFilter): a store's, a level's (also the low-stock
        # page's latest movements per level) and a kind's in a store.
        indexes = [
            models.Index(fields=["store", "-id"], name="movement_store_newest"),
            models.Index(fields=["store", "product", "-id"], name="movement_level_newest"),
            models.Index(fields=["store", "kind", "-id"], name="movement_store_kind_newest"),
        ]
        constraints = [
            # One movement per version of a level: no change is recorded twice.
            models.UniqueConstraint(
                fields=["store", "product", "version_after"],
                name="movement_one_per_version",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=MovementKind.values), name="movement_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(on_hand_after__gte=0)
                & Q(reserved_after__gte=0)
                & Q(reserved_after__lte=F("on_hand_after")),
                name="movement_after_values_valid",
            ),
            models.CheckConstraint(
                condition=Q(version_after__gte=1), name="movement_version_positive"
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.delta_on_hand:+d} ({self.store_id}/{self.product_id})"


class IdempotencyRecord(models.Model):
    """The stored answer to a stock POST sent with an ``Idempotency-Key``.

    The record is inserted pending (``response_status`` null) and committed before the
    operation runs, and completed after it, in transactions of their own, so no stock row
    is ever locked while it is written (``stock.idempotency`` says how a pending record
    is answered and when it may be deleted).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    # JSON text, not a JSON column: PostgreSQL's jsonb would reorder the keys, and a
    # replay must repeat the first answer byte for byte.
    response_body = models.TextField(null=True)
    # The first answer's ETag (a stock level's version), repeated by the replay.
    response_etag = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique"),
        ]

    def __str__(self):
        return f"{self.user_id}:{self.key}"


class ReservationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMMITTED = "committed", "Committed"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class Reservation(models.Model):
    """A checkout hold: units of one store reserved until paid (commit), cancelled
    (release) or timed out (expire). While active, its lines are counted in ``reserved``.

    ``closed_by`` and ``closed_via`` record who or what ended it (a user, the beat sweep,
    the command, or a sale that found stock short).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="reservations")
    status = models.CharField(
        max_length=20, choices=ReservationStatus.choices, default=ReservationStatus.ACTIVE
    )
    reference = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_via = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(status="active"),
                name="reservation_active_due",
            ),
            models.Index(
                fields=["store", "status", "-created_at"], name="reservation_store_status"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReservationStatus.values), name="reservation_status_valid"
            ),
            models.CheckConstraint(
                condition=(Q(status="active") & Q(closed_at__isnull=True))
                | (~Q(status="active") & Q(closed_at__isnull=False)),
                name="reservation_closed_iff_not_active",
            ),
        ]

    def __str__(self):
        return f"{self.id} ({self.status})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField()

    class Meta:
        ordering = ["product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reservation", "product"], name="reservation_line_one_per_product"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="reservation_line_quantity_positive"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.product_id}"


class BulkMode(models.TextChoices):
    SET = "set", "set on_hand"
    ADJUST = "adjust", "adjust on_hand by delta"


class BulkErrorPolicy(models.TextChoices):
    REJECT_ALL = "reject_all", "apply all items or none"
    SKIP_FAILED = "skip_failed", "apply the items that can be applied"


class BulkJobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class BulkJob(models.Model):
    """Many set or adjust items for one store, checked in the request and applied by a
    worker in batches (``stock.services.bulk``).

    ``items`` holds the checked items in request order (``{"sku", "product", "value",
    "expected"}``). ``processed`` counts the items handled so far in the job's apply
    order (by stock level id); it is committed with each batch, so a worker that dies
    leaves a job the next one resumes where the last commit left it, never applying an
    item twice. ``heartbeat_at`` moves with each batch: a running job whose heartbeat is
    old has lost its worker, and the sweep takes it over.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="bulk_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    mode = models.CharField(max_length=10, choices=BulkMode.choices)
    error_policy = models.CharField(
        max_length=12, choices=BulkErrorPolicy.choices, default=BulkErrorPolicy.REJECT_ALL
    )
    reason = models.CharField(max_length=20, blank=True)
    status = models.CharField(
        max_length=10, choices=BulkJobStatus.choices, default=BulkJobStatus.QUEUED
    )
    items = models.JSONField()
    total = models.PositiveIntegerField()
    processed = models.PositiveIntegerField(default=0)
    applied = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    # Where the request came from: the worker records its audit events with them, as
    # the single-item endpoints do.
    origin_ip = models.GenericIPAddressField(null=True, blank=True)
    origin_request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["queued", "running"]),
                name="bulkjob_unfinished",
            ),
            models.Index(fields=["store", "-created_at"], name="bulkjob_store_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=BulkJobStatus.values), name="bulkjob_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(processed__lte=F("total"))
                & Q(applied__lte=F("processed"))
                & Q(failed__lte=F("total")),
                name="bulkjob_progress_within_total",
            ),
        ]

    def __str__(self):
        return f"bulk {self.mode} job {self.id} ({self.status})"


class FlashSaleGate(models.Model):
    """A stock level whose buyers Redis admits before the database (``stock.flash_gate``).

    One row per level while its gate is on; switching it off deletes the row. Redis
    holds the tokens, this row is what the reconciler reseeds them from after Redis lost
    them.
    """

    level = models.OneToOneField(
        StockLevel, on_delete=models.CASCADE, primary_key=True, related_name="flash_gate"
    )
    enabled_at = models.DateTimeField(default=timezone.now)
    enabled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["level"]

    def __str__(self):
        return f"flash-sale gate of {self.level}"
