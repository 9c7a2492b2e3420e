"""Assertions shared by the stock tests."""

from django.db import connection
from django.db.models import Count, Sum

from stock.models import Movement, StockLevel


def level_of(store, product) -> StockLevel:
    return StockLevel.objects.get(store=store, product=product)


def movements_of(store, product) -> list[Movement]:
    return list(Movement.objects.filter(store=store, product=product).order_by("id"))


def assert_level_matches_ledger(store, product):
    """on_hand and reserved equal their ledger sums; version equals the number of changes."""
    level = level_of(store, product)
    totals = Movement.objects.filter(store=store, product=product).aggregate(
        on_hand=Sum("delta_on_hand"), reserved=Sum("delta_reserved")
    )
    changes = Movement.objects.filter(store=store, product=product).count()
    assert (level.on_hand, level.reserved, level.version) == (
        totals["on_hand"] or 0,
        totals["reserved"] or 0,
        changes,
    )


def ledger_drift() -> list[tuple[int, int]]:
    """The (store id, product id) of every level whose on_hand, reserved or version
    disagrees with the sums of its movements (a missing level counts as zeros): one
    grouped query over the ledger and one over the levels, however many there are."""
    ledger = {
        (row["store_id"], row["product_id"]): (row["on_hand"], row["reserved"], row["changes"])
        for row in Movement.objects.order_by()
        .values("store_id", "product_id")
        .annotate(on_hand=Sum("delta_on_hand"), reserved=Sum("delta_reserved"), changes=Count("id"))
    }
    levels = {
        (store_id, product_id): values
        for store_id, product_id, *values in StockLevel.objects.values_list(
            "store_id", "product_id", "on_hand", "reserved", "version"
        )
    }
    return sorted(
        key
        for key in levels.keys() | ledger.keys()
        if tuple(levels.get(key, (0, 0, 0))) != tuple(ledger.get(key, (0, 0, 0)))
    )


def insert_receive_movement_with_raw_sql(*, store_id, product_id, quantity, version_after, at):
    """A ledger row written behind the services' back."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Movement._meta.db_table} (store_id, product_id, kind, "
            "delta_on_hand, delta_reserved, on_hand_after, reserved_after, version_after, "
            "reason, reference, note, created_at) "
            "VALUES (%s, %s, 'receive', %s, 0, %s, 0, %s, '', '', '', %s)",
            [store_id, product_id, quantity, quantity, version_after, at],
        )


def event_log_problems() -> list[str]:
    """What is wrong with the stock event log against the ledger (empty when nothing):
    every store's events are numbered 1..N with no gap, a level's in the order of its
    versions (its changes' commit order: a reorder point's event, of no movement, keeps
    the version of the level's last movement); there is exactly one event per movement,
    with the movement's values after, and the type ``event_type`` gives for the change
    against the event's reorder point. The other events are reorder point changes: each
    moves its level's reorder point, and has its level's values of the moment."""
    from events.models import StockEvent, event_type

    movements = {movement.pk: movement for movement in Movement.objects.all()}
    problems = []
    by_store: dict[int, list] = {}
    for event in StockEvent.objects.order_by("store_id", "seq"):
        by_store.setdefault(event.store_id, []).append(event)
    for store_id, events in by_store.items():
        seqs = [event.seq for event in events]
        if seqs != list(range(1, len(events) + 1)):
            problems.append(f"store {store_id}: seqs {seqs}")
        last: dict[int, object] = {}  # each level's previous event, in seq order
        for event in events:
            previous = last.get(event.product_id)
            last[event.product_id] = event
            problems += _level_step_problems(previous, event)
    moved = [event for event in StockEvent.objects.all() if event.movement_id is not None]
    if sorted(event.movement_id for event in moved) != sorted(movements):
        problems.append(
            f"{len(moved)} events of movements for {len(movements)} movements: "
            f"{sorted(event.movement_id for event in moved)} != {sorted(movements)}"
        )
    for event in moved:
        movement = movements.get(event.movement_id)
        if movement is None:
            continue
        available = movement.on_hand_after - movement.reserved_after
        before = available - (movement.delta_on_hand - movement.delta_reserved)
        expected = (
            movement.store_id,
            movement.product_id,
            movement.on_hand_after,
            movement.reserved_after,
            available,
            movement.version_after,
            movement.created_at,
            event_type(before, available, event.reorder_point),
        )
        found = (
            event.store_id,
            event.product_id,
            event.on_hand,
            event.reserved,
            event.available,
            event.version,
            event.at,
            event.type,
        )
        if found != expected:
            problems.append(f"event {event.store_id}:{event.seq}: {found} != {expected}")
    return problems


def _level_step_problems(previous, event) -> list[str]:
    """What is wrong with ``event`` following ``previous``, its level's event before it
    (None: its first): a movement's event is of a later version; a reorder point's keeps
    the version and the quantities and moves the reorder point, typed as ``event_type``
    says for it."""
    from events.models import event_type

    name = f"event {event.store_id}:{event.seq}"
    if event.movement_id is not None:
        if previous is not None and event.version <= previous.version:
            return [f"{name}: version {event.version} after {previous.version}"]
        return []
    if previous is None:  # its level's first event here: nothing to compare it with
        return []
    expected = (
        previous.version,
        (previous.on_hand, previous.reserved),
        event.available,
        event_type(event.available, event.available, event.reorder_point, previous.reorder_point),
    )
    found = (event.version, (event.on_hand, event.reserved), event.on_hand - event.reserved,
             event.type)  # fmt: skip
    problems = [] if found == expected else [f"{name}: {found} != {expected}"]
    if previous.reorder_point == event.reorder_point:
        problems.append(f"{name}: the reorder point {event.reorder_point} did not change")
    return problems
