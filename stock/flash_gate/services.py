"""Switching gates on and off, and reseeding their tokens from the database."""

import logging
import time
from collections import defaultdict

from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from inventory_site.cache_outage import CACHE_ERRORS, CircuitOpen, broker_circuit, cache_circuit

from ..models import FlashSaleGate, ReservationLine, ReservationStatus, StockLevel
from ..services.locks import ensure_stock_levels
from ..services.rules import user_of
from .process import view
from .tokens import GateState, LevelKeys, member

logger = logging.getLogger(__name__)
GATE = "stock.flash_gate"


@transaction.atomic
def gate_switch(*, store, product, enabled: bool, actor=None) -> bool:
    """Switch the gate of ``product`` in ``store`` on or off; returns whether it changed.

    On: the row is written and, after commit, Redis is seeded from the database (and
    once more when every process has read the registry again, so that a change made by a
    process that did not know of the gate yet is counted). Off: Redis forgets the level
    and buyers go straight to the database again.
    """
    ensure_stock_levels([(store, product)])
    level = StockLevel.objects.get(store=store, product=product)
    if enabled:
        _, changed = FlashSaleGate.objects.get_or_create(
            level=level, defaults={"enabled_by": user_of(actor)}
        )
    else:
        changed = bool(FlashSaleGate.objects.filter(level=level).delete()[0])
    if not changed:
        return False
    audit_record(
        action="stock.flash_gate",
        object_type="stock.stocklevel",
        object_id=level.pk,
        object_repr=f"{product.sku} @ {store.code}",
        store=store,
        before={"enabled": not enabled},
        after={"enabled": enabled},
        actor=actor,
    )
    if enabled:
        transaction.on_commit(lambda: _seed_now_and_again([level.pk]), robust=True)
    else:
        transaction.on_commit(lambda: _forget([(store.pk, product.pk)]), robust=True)
    return True


def gate_state(*, store, product) -> dict:
    """``{"enabled", "tokens", "admitted", "refunded"}``; the last three None when Redis
    holds nothing for the level (the gate off, the embedded mode, Redis down)."""
    enabled = FlashSaleGate.objects.filter(level__store=store, level__product=product).exists()
    state: GateState | None = None
    if view.tokens is not None:
        try:
            with cache_circuit:
                state = view.tokens.state(LevelKeys.of(store.pk, product.pk))
        except CACHE_ERRORS as error:
            view.failed(error)
    return {
        "enabled": enabled,
        "tokens": state.tokens if state else None,
        "admitted": state.admitted if state else None,
        "refunded": state.refunded if state else None,
    }


def gates_have_tokens() -> bool:
    """Whether this site keeps gate tokens (it runs with Redis). Without Redis a gate
    can be switched, and takes effect once the site runs with Redis."""
    return view.tokens is not None


def gates_reconcile(*, level_ids=None) -> int:
    """Reseed the tokens of every gated level (or of ``level_ids``) from the database and
    forget levels whose gate is off; returns how many levels were seeded.

    Holds older than ``FLASH_GATE_HOLD_SECONDS`` are given back. Committed values only
    replace older versions, so a change heard while the database was read is kept.
    """
    tokens = view.tokens
    if tokens is None:
        return 0
    with cache_circuit:
        _, registered = tokens.registry() if level_ids is None else (True, set())
    gates = FlashSaleGate.objects.all()
    if level_ids is not None:
        gates = gates.filter(level_id__in=level_ids)
    rows = list(
        gates.values_list(
            "level__store_id", "level__product_id", "level__available", "level__version"
        )
    )
    due = _active_reservations([(store_id, product_id) for store_id, product_id, _, _ in rows])
    now = time.time()
    with cache_circuit:
        for store_id, product_id, available, version in rows:
            value = member(store_id, product_id)
            seeded = tokens.seed(
                value, LevelKeys.of(store_id, product_id), available, version, due[value], now=now
            )
            # A sold-out flag this process keeps would refuse what was just seeded.
            view.saw_tokens(value, seeded)
        gone = registered - {member(store_id, product_id) for store_id, product_id, _, _ in rows}
        if gone:
            tokens.remove({value: LevelKeys.of(*map(int, value.split(":"))) for value in gone})
        if level_ids is None:
            tokens.mark_seeded()
    view.read_again()
    return len(rows)


def gates_reconcile_safely(**kwargs) -> int | None:
    """``gates_reconcile``, or None (logged once) when Redis does not answer: the beat's
    next reconcile tries again."""
    try:
        return gates_reconcile(**kwargs)
    except CACHE_ERRORS as error:
        view.failed(error)
        return None


def _active_reservations(pairs) -> dict[str, list[tuple[str, float]]]:
    """(reservation id, expiry in s) of the active reservations holding each level."""
    due = defaultdict(list)
    if not pairs:
        return due
    stores = {store_id for store_id, _ in pairs}
    products = {product_id for _, product_id in pairs}
    lines = ReservationLine.objects.filter(
        reservation__status=ReservationStatus.ACTIVE,
        reservation__store_id__in=stores,
        product_id__in=products,
    ).values_list(
        "reservation__store_id", "product_id", "reservation_id", "reservation__expires_at"
    )
    wanted = {member(store_id, product_id) for store_id, product_id in pairs}
    for store_id, product_id, reservation_id, expires_at in lines:
        value = member(store_id, product_id)
        if value in wanted:
            due[value].append((str(reservation_id), expires_at.timestamp()))
    return due


def _seed_now_and_again(level_ids) -> None:
    from ..tasks import reconcile_flash_gates

    gates_reconcile_safely(level_ids=level_ids)
    # A process reads the registry again within FLASH_GATE_REGISTRY_SECONDS: until then
    # it may change the level without telling the gate; this second reseed counts that.
    send_task(
        reconcile_flash_gates,
        kwargs={"level_ids": level_ids},
        countdown=2 * settings.FLASH_GATE_REGISTRY_SECONDS + 1,
    )


def _forget(pairs) -> None:
    if view.tokens is None:
        return
    try:
        with cache_circuit:
            view.tokens.remove({member(*pair): LevelKeys.of(*pair) for pair in pairs})
    except CACHE_ERRORS as error:
        view.failed(error)  # the next reconcile forgets it
    for pair in pairs:
        view.forget(member(*pair))
    view.read_again()


def send_task(task, kwargs=None, countdown=None) -> None:
    """Queue ``task``; the beat's reconcile does its work anyway if the broker cannot
    take it. In the embedded mode (no Redis) there is nothing to reconcile."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        if countdown is None:
            task.apply(kwargs=kwargs or {})
        return
    try:
        with broker_circuit:
            task.apply_async(kwargs=kwargs or {}, countdown=countdown, retry=False)
    except CircuitOpen:
        pass
    except Exception as error:  # noqa: BLE001 - the beat's reconcile covers it
        logger.warning("flash-sale gate reconcile not queued (%s)", error)
