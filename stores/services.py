"""Writes to stores and memberships."""

from django.db import transaction

from .models import Membership, Role, Store


@transaction.atomic
def store_create(*, code: str, name: str, actor) -> Store:
    return Store.objects.create(code=code, name=name)


@transaction.atomic
def store_update(*, store: Store, actor, **changes) -> Store:
    """Change ``name`` and/or ``is_active``; ``code`` never changes (clients address by it)."""
    for field, value in changes.items():
        if field not in {"name", "is_active"}:
            raise ValueError(f"store field {field!r} cannot be changed")
        setattr(store, field, value)
    store.save(update_fields=[*changes])
    return store


@transaction.atomic
def membership_grant(*, store: Store, user, role: Role, actor) -> tuple[Membership, bool]:
    """Give ``user`` ``role`` in ``store``, replacing any role they had; True if new."""
    return Membership.objects.update_or_create(user=user, store=store, defaults={"role": role})


@transaction.atomic
def membership_revoke(*, store: Store, user, actor) -> bool:
    deleted, _ = Membership.objects.filter(store=store, user=user).delete()
    return bool(deleted)
