"""Changes to tokens, users, groups and permissions retire the cached lookups once they
commit (``inventory_site.lookup_cache``): a revoked token, a deactivated user or a
permission taken away counts from the very next request.

Model signals, so that every path is covered (services, the admin, ``changepassword``,
a cascade); they only retire cache entries.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from inventory_site.lookup_cache import access_changed

from .models import User

CHANGING_M2M_ACTIONS = {"post_add", "post_remove", "post_clear"}


def retire_access_lookups() -> None:
    """Retire now, and again once the transaction commits: a request that loads the old
    row in between (it cannot see the change yet) may fill an entry of the new
    generation, which the second retirement retires in turn."""
    access_changed()
    transaction.on_commit(access_changed, robust=True)


@receiver([post_save, post_delete], sender=Token)
@receiver([post_delete], sender=Group)
@receiver([post_delete], sender=Permission)
def _token_group_or_permission_changed(sender, **kwargs):
    retire_access_lookups()


@receiver([post_save, post_delete], sender=User)
def _user_changed(sender, update_fields=None, **kwargs):
    # A login stamps last_login, which no lookup holds: not worth retiring every entry.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    retire_access_lookups()


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def _permissions_changed(sender, action, **kwargs):
    if action in CHANGING_M2M_ACTIONS:
        retire_access_lookups()
