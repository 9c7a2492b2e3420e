"""Random sequences of service calls, valid and invalid, checked against a model.

Hypothesis drives receive, adjust, set_count, purchase, transfer, bulk jobs (set and
adjust, all-or-nothing and skip-failed, with compare-and-set items) and the reservation
life cycle (reserve, commit, release, holds falling due, the expiry sweep) with
quantities that are sometimes out of range, versions that are sometimes stale and
requests that are sometimes larger than the stock. After every step each level and each
reservation must equal the model, the invariants must hold, and the ledger must add up.
"""

from dataclasses import dataclass

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stock.exceptions import (
    InsufficientStock,
    InvalidStockOperation,
    ReservationNotActive,
    VersionMismatch,
)
from stock.models import AdjustmentReason, Reservation, StockLevel
from stock.services import (
    MAX_QUANTITY,
    BulkRejected,
    StockLine,
    bulk_job_run,
    bulk_job_submit,
    reservation_commit,
    reservation_create,
    reservation_release,
    reservations_expire_all_due,
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_set_count,
    stock_transfer,
)
from stock.tests.state_machines import (
    PRODUCTS,
    STORES,
    assert_the_ledger_adds_up,
    make_due,
    run_machine,
)
from tests.factories import ProductFactory, StoreFactory

QUANTITIES = st.one_of(st.integers(1, 30), st.sampled_from([0, -1, MAX_QUANTITY + 1]))
DELTAS = st.one_of(st.integers(-30, 30), st.sampled_from([MAX_QUANTITY + 1]))
# Adjustments that take goods off the shelf, and those that bring them back onto it.
LOWERING_REASONS = {"damaged", "lost"}
RAISING_REASONS = {"found", "returned", "received"}
LINES = st.lists(st.tuples(PRODUCTS, QUANTITIES), min_size=1, max_size=3)


def sign_fits(delta: int, reason: str) -> bool:
    return not (
        (reason in LOWERING_REASONS and delta > 0) or (reason in RAISING_REASONS and delta < 0)
    )


@dataclass
class Level:
    on_hand: int = 0
    reserved: int = 0
    version: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass
class Hold:
    reservation: Reservation
    store: int
    lines: dict[int, int]
    status: str = "active"
    due: bool = False


def valid_quantity(quantity) -> bool:
    return 1 <= quantity <= MAX_QUANTITY


def merged(lines) -> dict[int, int] | None:
    """Quantities by product, or None when a line or a sum is out of range."""
    totals: dict[int, int] = {}
    for product, quantity in lines:
        if not valid_quantity(quantity):
            return None
        totals[product] = totals.get(product, 0) + quantity
    return totals if all(valid_quantity(q) for q in totals.values()) else None


class StockServicesMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.stores = [StoreFactory(), StoreFactory()]
        self.products = [ProductFactory(), ProductFactory()]
        self.levels: dict[tuple[int, int], Level] = {}
        self.holds: list[Hold] = []

    # --- the model ------------------------------------------------------------------

    def level(self, s, p) -> Level:
        return self.levels.setdefault((s, p), Level())

    def change(self, s, p, on_hand=0, reserved=0):
        level = self.level(s, p)
        level.on_hand += on_hand
        level.reserved += reserved
        level.version += 1

    def close(self, hold: Hold, status: str):
        for p, quantity in hold.lines.items():
            self.change(hold.store, p, on_hand=-quantity if status == "committed" else 0,
                        reserved=-quantity)  # fmt: skip
        hold.status = status

    def due_holds(self, s, products) -> list[Hold]:
        return [
            h
            for h in self.holds
            if h.status == "active" and h.due and h.store == s and set(h.lines) & set(products)
        ]

    def fits(self, s, wanted: dict[int, int]) -> bool:
        return all(q <= self.level(s, p).available for p, q in wanted.items())

    def expect_sale_or_shortage(self, s, wanted: dict[int, int], call, apply):
        """Run a sale or reservation the way the services do: when stock is short, the
        due holds on those products are expired and it is tried once more; if it is
        still short, nothing at all changes."""
        if self.fits(s, wanted):
            result = call()
            apply(result)
            return
        due = self.due_holds(s, wanted)
        saved = {key: Level(**vars(level)) for key, level in self.levels.items()}
        for hold in due:
            self.close(hold, "expired")
        if due and self.fits(s, wanted):
            result = call()
            apply(result)
            return
        self.levels = saved
        for hold in due:
            hold.status = "active"
        with pytest.raises(InsufficientStock):
            call()

    # --- stock rules ----------------------------------------------------------------

    @rule(s=STORES, p=PRODUCTS, quantity=QUANTITIES)
    def receive(self, s, p, quantity):
        def call():
            return stock_receive(store=self.stores[s], product=self.products[p], quantity=quantity)

        if not valid_quantity(quantity):
            with pytest.raises(InvalidStockOperation):
                call()
            return
        call()
        self.change(s, p, on_hand=quantity)

    @rule(s=STORES, p=PRODUCTS, delta=DELTAS, reason=st.sampled_from(AdjustmentReason.values))
    def adjust(self, s, p, delta, reason):
        def call():
            return stock_adjust(
                store=self.stores[s], product=self.products[p], delta=delta, reason=reason
            )

        if delta == 0 or abs(delta) > MAX_QUANTITY or not sign_fits(delta, reason):
            with pytest.raises(InvalidStockOperation):
                call()
        elif self.level(s, p).on_hand + delta < self.level(s, p).reserved:
            with pytest.raises(InsufficientStock):
                call()
        else:
            call()
            self.change(s, p, on_hand=delta)

    @rule(
        s=STORES,
        p=PRODUCTS,
        on_hand=st.integers(-1, 40),
        version_offset=st.sampled_from([None, 0, 0, -1, 1]),
    )
    def set_count(self, s, p, on_hand, version_offset):
        level = self.level(s, p)
        expected_version = None if version_offset is None else level.version + version_offset

        def call():
            return stock_set_count(
                store=self.stores[s],
                product=self.products[p],
                on_hand=on_hand,
                expected_version=expected_version,
            )

        if on_hand < 0 or (expected_version is not None and expected_version < 0):
            with pytest.raises(InvalidStockOperation):
                call()
        elif expected_version is not None and expected_version != level.version:
            with pytest.raises(VersionMismatch):
                call()
        elif on_hand < level.reserved:
            with pytest.raises(InsufficientStock):
                call()
        else:
            call()
            self.change(s, p, on_hand=on_hand - level.on_hand)

    @rule(s=STORES, p=PRODUCTS, quantity=QUANTITIES)
    def purchase(self, s, p, quantity):
        def call():
            return stock_purchase(store=self.stores[s], product=self.products[p], quantity=quantity)

        if not valid_quantity(quantity):
            with pytest.raises(InvalidStockOperation):
                call()
            return
        self.expect_sale_or_shortage(
            s, {p: quantity}, call, lambda _: self.change(s, p, on_hand=-quantity)
        )

    @rule(source=STORES, lines=LINES)
    def transfer(self, source, lines):
        target = 1 - source

        def call():
            return stock_transfer(
                from_store=self.stores[source],
                to_store=self.stores[target],
                lines=[StockLine(self.products[p], quantity) for p, quantity in lines],
            )

        wanted = merged(lines)
        if wanted is None:
            with pytest.raises(InvalidStockOperation):
                call()
        elif not self.fits(source, wanted):
            with pytest.raises(InsufficientStock):
                call()
        else:
            call()
            for p, quantity in wanted.items():
                self.change(source, p, on_hand=-quantity)
                self.change(target, p, on_hand=quantity)

    @rule(
        s=STORES,
        mode=st.sampled_from(["set", "adjust"]),
        items=st.lists(
            st.tuples(PRODUCTS, st.integers(-35, 40), st.sampled_from([None, None, 0, -1, 1])),
            min_size=1,
            max_size=3,
        ),
        reason=st.sampled_from(["", "correction", "damaged", "found"]),
        skip_failed=st.booleans(),
    )
    def bulk(self, s, mode, items, reason, skip_failed):
        """A bulk job: ``(product, value, offset of expected_on_hand from on_hand)``."""
        field = "on_hand" if mode == "set" else "delta"
        body = [
            {"sku": self.products[p].sku, field: value}
            | ({} if offset is None else {"expected_on_hand": self.level(s, p).on_hand + offset})
            for p, value, offset in items
        ]

        def call():
            job = bulk_job_submit(
                store=self.stores[s],
                mode=mode,
                items=body,
                reason=reason,
                error_policy="skip_failed" if skip_failed else "reject_all",
            )
            bulk_job_run(job.pk)
            job.refresh_from_db()
            return job

        products = [p for p, _, _ in items]
        bad = len(set(products)) < len(products) or any(
            (mode == "set" and not 0 <= value <= MAX_QUANTITY)
            or (mode == "adjust" and (value == 0 or not sign_fits(value, reason)))
            or ("expected_on_hand" in item and item["expected_on_hand"] < 0)
            for (_, value, _), item in zip(items, body, strict=True)
        )
        if bad:
            with pytest.raises(BulkRejected):
                call()
            return
        passing = []
        for p, value, offset in items:
            level = self.level(s, p)
            after = value if mode == "set" else level.on_hand + value
            if offset in (None, 0) and after >= level.reserved:
                passing.append((p, after - level.on_hand))
        job = call()
        failed = len(items) - len(passing)
        if failed and not skip_failed:
            assert (job.status, job.applied, job.failed) == ("failed", 0, failed)
            return
        assert (job.status, job.applied, job.failed) == ("done", len(passing), failed)
        for p, delta in passing:
            self.change(s, p, on_hand=delta)

    # --- reservation rules ----------------------------------------------------------

    @rule(s=STORES, lines=LINES)
    def reserve(self, s, lines):
        def call():
            return reservation_create(
                store=self.stores[s],
                lines=[StockLine(self.products[p], quantity) for p, quantity in lines],
                ttl_seconds=600,
            )

        wanted = merged(lines)
        if wanted is None:
            with pytest.raises(InvalidStockOperation):
                call()
            return

        def apply(reservation):
            for p, quantity in wanted.items():
                self.change(s, p, reserved=quantity)
            self.holds.append(Hold(reservation, s, wanted))

        self.expect_sale_or_shortage(s, wanted, call, apply)

    @precondition(lambda self: self.holds)
    @rule(pick=st.integers(0, 50))
    def hold_falls_due(self, pick):
        hold = self.holds[pick % len(self.holds)]
        make_due(hold.reservation)
        hold.due = True

    @precondition(lambda self: self.holds)
    @rule(pick=st.integers(0, 50), commit=st.booleans())
    def finish(self, pick, commit):
        hold = self.holds[pick % len(self.holds)]
        service, closed = (
            (reservation_commit, "committed") if commit else (reservation_release, "released")
        )
        if commit and hold.status == "committed":
            assert service(reservation=hold.reservation).status == "committed"
        elif hold.status != "active":
            with pytest.raises(ReservationNotActive):
                service(reservation=hold.reservation)
        elif hold.due:
            with pytest.raises(ReservationNotActive):
                service(reservation=hold.reservation)
            self.close(hold, "expired")
        else:
            assert service(reservation=hold.reservation).status == closed
            self.close(hold, closed)

    @rule()
    def sweep(self):
        due = [h for h in self.holds if h.status == "active" and h.due]
        assert reservations_expire_all_due(via="test") >= len(due)
        for hold in due:
            self.close(hold, "expired")

    # --- after every step -----------------------------------------------------------

    @invariant()
    def levels_and_reservations_match_the_model_and_the_ledger(self):
        levels = StockLevel.objects.filter(store__in=self.stores).select_related("store", "product")
        actual = {
            (self.stores.index(level.store), self.products.index(level.product)): level
            for level in levels
        }
        for key in set(actual) | set(self.levels):
            expected = self.levels.get(key, Level())
            level = actual.get(key)
            found = Level(level.on_hand, level.reserved, level.version) if level else Level()
            assert found == expected, key
            if level:
                assert 0 <= level.reserved <= level.on_hand
                assert level.available == level.on_hand - level.reserved
        statuses = dict(
            Reservation.objects.filter(store__in=self.stores).values_list("pk", "status")
        )
        assert statuses == {h.reservation.pk: h.status for h in self.holds}
        assert_the_ledger_adds_up(self.stores)


@pytest.mark.django_db
def test_random_service_sequences_keep_every_invariant():
    run_machine(StockServicesMachine, max_examples=60)
