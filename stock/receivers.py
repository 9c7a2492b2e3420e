"""Side effects of committed stock changes (connected in StockConfig.ready)."""

from django.dispatch import receiver

from .cache import stock_level_cache
from .serializers import StockLevelSerializer
from .signals import stock_changed


@receiver(stock_changed)
def refresh_cached_levels(sender, kind, levels, **kwargs):
    """Every write path sends stock_changed after commit, with the values it committed:
    put them in the cache, so the next read sees this write."""
    for level in levels:
        stock_level_cache.refresh(
            level.store_id, level.product_id, StockLevelSerializer(level).data
        )
