"""Side effects of committed stock changes (connected in StockConfig.ready)."""

from django.dispatch import receiver

from . import flash_gate
from .cache import stock_level_cache
from .models import MovementKind
from .serializers import stock_level_body
from .signals import stock_changed, stock_levels_seeded


@receiver(stock_changed)
def refresh_cached_levels(sender, kind, levels, **kwargs):
    """Every write path sends stock_changed after commit, with the values it committed:
    put them in the cache, so the next read sees this write."""
    if len(levels) == 1:
        [level] = levels
        stock_level_cache.refresh(level.store_id, level.product_id, stock_level_body(level))
    else:
        stock_level_cache.refresh_many(
            {(level.store_id, level.product_id): stock_level_body(level) for level in levels}
        )


@receiver(stock_changed)
def tell_the_flash_gate(sender, kind, levels, reservations=(), **kwargs):
    """Gated levels take the committed values (their tokens follow what the database
    has available), and learn which holds may fall due."""
    started = reservations if kind == MovementKind.RESERVE else ()
    ended = reservations if kind != MovementKind.RESERVE else ()
    flash_gate.heard_of_changes(levels, started=started, ended=ended)


@receiver(stock_levels_seeded)
def drop_cached_levels_after_seeding(sender, store_ids, product_ids, **kwargs):
    """A seeded pair may be cached as the zero level it read as before; too many pairs
    to refresh one by one, so every cached level goes."""
    stock_level_cache.drop_all()


@receiver(stock_levels_seeded)
def reseed_flash_gates_after_seeding(sender, store_ids, product_ids, **kwargs):
    """A seeded level sends no stock_changed; a gated one among them is reseeded."""
    from .flash_gate.services import gates_reconcile_safely

    gates_reconcile_safely()
