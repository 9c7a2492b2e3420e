"""Moving available units between two stores."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from stores.models import Store

from ..exceptions import InvalidStockOperation
from ..metrics import counted
from ..models import MovementKind, StockLevel
from .locks import ensure_stock_levels, lock_stock_levels
from .rules import StockLine, merge_lines, refuse_inactive, refuse_shortages
from .sql import Change, announce, apply_locked


@dataclass(frozen=True)
class Transfer:
    reference: str
    lines: list[StockLine]
    source_levels: list[StockLevel]
    destination_levels: list[StockLevel]


@counted("transfer")
@transaction.atomic
def stock_transfer(
    *,
    from_store: Store,
    to_store: Store,
    lines: Iterable[StockLine],
    note: str = "",
    actor=None,
) -> Transfer:
    """Move available units of several products between two stores: all lines or none.

    Lines naming the same product are merged. The shortages of every line are reported
    together, so a client can fix the whole request at once.
    """
    if from_store.pk == to_store.pk:
        raise InvalidStockOperation("A transfer needs two different stores.")
    lines = merge_lines(lines)
    for store in (from_store, to_store):
        refuse_inactive(store, [line.product for line in lines])
    reference = f"transfer:{uuid.uuid4().hex}"
    ensure_stock_levels((to_store, line.product) for line in lines)
    locked = lock_stock_levels(
        (store, line.product) for store in (from_store, to_store) for line in lines
    )
    refuse_shortages(from_store, lines, locked)
    changes = [
        Change(
            store=store,
            product=line.product,
            kind=kind,
            delta_on_hand=sign * line.quantity,
            reference=reference,
            note=note,
            actor=actor,
        )
        for store, kind, sign in (
            (from_store, MovementKind.TRANSFER_OUT, -1),
            (to_store, MovementKind.TRANSFER_IN, 1),
        )
        for line in lines
    ]
    levels = apply_locked(changes, locked)
    source_levels, destination_levels = levels[: len(lines)], levels[len(lines) :]
    announce(MovementKind.TRANSFER_OUT, levels)
    return Transfer(reference, lines, source_levels, destination_levels)
