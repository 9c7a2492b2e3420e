"""What the stock services ask of the gate: admit a purchase or a reservation before the
database, settle or refund it after, and hear of every committed change."""

import contextlib
import contextvars
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from inventory_site.cache_outage import CACHE_ERRORS, cache_circuit

from ..exceptions import InsufficientStock, Shortage
from ..metrics import FLASH_GATE_ANSWERS
from ..models import StockLevel
from .process import view
from .tokens import LevelKeys, member

ADMITTED, SHORT, DUE, NOT_SEEDED = 1, 0, 2, 3

# The levels whose admission this context is settling: their settlement carries the
# committed values, so ``heard_of_changes`` need not send them a second time.
_settling: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "flash_gate_settling", default=frozenset()
)


@dataclass(frozen=True)
class GatedLine:
    product: object
    units: int
    member: str
    keys: LevelKeys


@dataclass(frozen=True)
class Admission:
    """Tokens taken for ``lines``: settled once the database change commits, refunded if
    it fails. A hold never settled (a process that died) is given back by the reconciler
    after ``FLASH_GATE_HOLD_SECONDS``."""

    hold_id: str
    lines: list[GatedLine]

    def settle_after_commit(self, levels) -> None:
        """``levels``: the committed StockLevels of (at least) the gated lines."""
        by_member = {member(level.store_id, level.product_id): level for level in levels}

        def settle():
            values = []
            for line in self.lines:
                level = by_member[line.member]
                values.append((line.units, level.available, level.version))
            self._settle(values, refund=False)

        transaction.on_commit(settle, robust=True)

    def release(self, levels=()) -> None:
        """The change is made inside a caller's transaction: the hold ends now, uncounted.
        Until that transaction commits, the database still has the units available, so
        the tokens stay within it; its commit tells the gate the new values
        (``heard_of_changes``), and a rollback leaves nothing to give back."""
        self._settle([(line.units, "", "") for line in self.lines], refund=False)

    def refund(self) -> None:
        """The database refused or failed: the tokens go back at once."""
        FLASH_GATE_ANSWERS.labels("refunded").inc()
        self._settle([(line.units, "", "") for line in self.lines], refund=True)

    def _settle(self, values, *, refund: bool) -> None:
        try:
            with cache_circuit:
                after = view.tokens.settle(
                    [line.keys for line in self.lines], values, hold_id=self.hold_id, refund=refund
                )
        except CACHE_ERRORS as error:
            view.failed(error)  # the hold runs out; the reconciler gives it back
            return
        for line, tokens in zip(self.lines, after, strict=True):
            view.forget(line.member) if tokens < 0 else view.saw_tokens(line.member, tokens)


def admit(store, lines) -> Admission | None:
    """Take the tokens of ``lines`` ((product, units) pairs) of ``store``'s gated levels,
    all or none, before the database is asked.

    Returns None when no line is gated, or the database must decide anyway: Redis is
    down (the gate fails open), a level is not seeded yet, or a reservation of a short
    level is due (the database expires it and sells). Raises InsufficientStock, having
    asked no database, when the tokens are short; a level this process saw sold out
    moments ago is refused without asking Redis either.
    """
    members = {member(store.pk, product.pk): (product, units) for product, units in lines}
    gated = view.gated_members(list(members))
    if not gated:
        return None
    # Refused here only if every gated line was seen sold out: a gated line that was not
    # may be short too, and only Redis can say so.
    if all(view.is_sold_out(value) for value in gated):
        FLASH_GATE_ANSWERS.labels("sold_out_here").inc()
        raise _refusal(store, members, {value: 0 for value in gated})
    gated_lines = [
        GatedLine(
            members[value][0],
            members[value][1],
            value,
            LevelKeys.of(store.pk, members[value][0].pk),
        )
        for value in gated
    ]
    hold_id, now = uuid.uuid4().hex, time.time()
    try:
        with cache_circuit:
            outcome, *tokens = view.tokens.admit(
                [line.keys for line in gated_lines],
                [line.units for line in gated_lines],
                hold_id=hold_id,
                now=now,
                deadline=now + settings.FLASH_GATE_HOLD_SECONDS,
            )
    except CACHE_ERRORS as error:
        view.failed(error)
        FLASH_GATE_ANSWERS.labels("fail_open").inc()
        return None
    view.answered()
    if outcome == NOT_SEEDED:
        for line in gated_lines:
            view.forget(line.member)
        FLASH_GATE_ANSWERS.labels("fail_open").inc()
        return None
    if outcome == DUE:
        FLASH_GATE_ANSWERS.labels("to_database").inc()
        return None
    for line, left in zip(gated_lines, tokens, strict=True):
        view.saw_tokens(line.member, left)
    if outcome == ADMITTED:
        FLASH_GATE_ANSWERS.labels("admitted").inc()
        return Admission(hold_id, gated_lines)
    FLASH_GATE_ANSWERS.labels("refused").inc()
    raise _refusal(
        store, members, {line.member: left for line, left in zip(gated_lines, tokens, strict=True)}
    )


def _refusal(store, members, tokens: dict[str, int]) -> InsufficientStock:
    """The refusal the database would give, naming every short line in the request's
    order: gated lines by their ``tokens``, the others (a reservation that also holds
    ungated levels) by what the database has available, read once without a lock. A
    request of gated levels only asks no database."""
    ungated = [product.pk for value, (product, _) in members.items() if value not in tokens]
    available = dict(
        StockLevel.objects.filter(store=store, product_id__in=ungated).values_list(
            "product_id", "available"
        )
        if ungated
        else ()
    )
    shortages = []
    for value, (product, units) in members.items():
        left = tokens[value] if value in tokens else available.get(product.pk, 0)
        if left < units:
            shortages.append(Shortage(product.sku, units, left))
    return InsufficientStock(shortages)


@contextlib.contextmanager
def settled(admission: Admission | None):
    """Around the database change of ``admission`` (None: nothing admitted): yields the
    function the change calls with its levels once it has made them, which settles the
    admission after commit (inside a caller's transaction: ends its hold at once,
    ``Admission.release``); if the change raises, the tokens go back."""
    if admission is None:
        yield _nothing_to_settle
        return
    if transaction.get_connection().in_atomic_block:
        # A caller's transaction outlives the change; it may still roll back, and then no
        # settlement would ever run: the hold would keep its units from buyers until the
        # reconciler gave them back, FLASH_GATE_HOLD_SECONDS later.
        settling, settle = None, admission.release
    else:
        settling = _settling.set(frozenset(line.member for line in admission.lines))
        settle = admission.settle_after_commit
    try:
        yield settle
    except BaseException:
        admission.refund()
        raise
    finally:
        if settling is not None:
            _settling.reset(settling)


def _nothing_to_settle(levels) -> None:
    pass


def heard_of_changes(levels, *, started=(), ended=()) -> None:
    """After the commit of any change: gated levels among ``levels`` take its values
    (newer versions only); reservations it ``started`` may fall due, those it ``ended``
    no longer will."""
    by_member = {member(level.store_id, level.product_id): level for level in levels}
    # A reservation's holds must reach the due sets, which only this call writes.
    settling = frozenset() if started or ended else _settling.get()
    gated = [value for value in view.gated_members(list(by_member)) if value not in settling]
    if not gated:
        return
    try:
        with cache_circuit:
            after = view.tokens.sync(
                [
                    LevelKeys.of(by_member[value].store_id, by_member[value].product_id)
                    for value in gated
                ],
                [(by_member[value].available, by_member[value].version) for value in gated],
                started=[(str(r.pk), r.expires_at.timestamp()) for r in started],
                ended=[str(r.pk) for r in ended],
            )
    except CACHE_ERRORS as error:
        view.failed(error)  # the next reconcile reseeds these levels
        return
    view.answered()
    for value, tokens in zip(gated, after, strict=True):
        view.forget(value) if tokens < 0 else view.saw_tokens(value, tokens)
