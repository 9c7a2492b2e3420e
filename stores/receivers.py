"""Store and membership changes retire the cached lookups once they commit
(``inventory_site.lookup_cache``): a revoked membership or a lowered role counts from the
very next request. Model signals, so that the services, the admin and cascades are all
covered."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.receivers import retire_access_lookups

from .models import Membership, Store


@receiver([post_save, post_delete], sender=Store)
@receiver([post_save, post_delete], sender=Membership)
def _store_or_membership_changed(sender, **kwargs):
    retire_access_lookups()
