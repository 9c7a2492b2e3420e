"""Product changes retire the cached catalog responses and product lookups.

Model signals, so that every path that saves a product (services, the admin) is
covered; they only schedule the cache side effect, no business rule.
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .cache import new_catalog_generation
from .models import Product


@receiver([post_save, post_delete], sender=Product)
def retire_cached_catalog(sender, **kwargs):
    # Now, and again at commit: an answer loaded from the old row in between is retired
    # by the second bump (the product lookups of inventory_site.lookup_cache too).
    new_catalog_generation()
    transaction.on_commit(new_catalog_generation, robust=True)
