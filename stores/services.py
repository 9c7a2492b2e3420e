"""Writes to stores and memberships."""

from django.db import transaction

from audit.services import audit_record, field_values

from .models import Membership, Role, Store


@transaction.atomic
def store_create(*, code: str, name: str, actor) -> Store:
    store = Store.objects.create(code=code, name=name)
    _audit_store(
        store, "store.create", before=None, fields=["code", "name", "is_active"], actor=actor
    )
    return store


@transaction.atomic
def store_update(*, store: Store, actor, **changes) -> Store:
    """Change ``name`` and/or ``is_active``; ``code`` never changes (clients address by it)."""
    for field in changes:
        if field not in {"name", "is_active"}:
            raise ValueError(f"store field {field!r} cannot be changed")
    changed = [field for field, value in changes.items() if getattr(store, field) != value]
    before = field_values(store, changed)
    for field, value in changes.items():
        setattr(store, field, value)
    store.save(update_fields=[*changes])
    if changed:
        _audit_store(store, "store.update", before=before, fields=changed, actor=actor)
    return store


@transaction.atomic
def membership_grant(*, store: Store, user, role: Role, actor) -> tuple[Membership, bool]:
    """Give ``user`` ``role`` in ``store``, replacing any role they had; True if new."""
    previous = Membership.objects.filter(user=user, store=store).values_list("role", flat=True)
    before = previous.first()
    membership, created = Membership.objects.update_or_create(
        user=user, store=store, defaults={"role": role}
    )
    if before != membership.role:
        _audit_membership(
            membership.pk, store, user, "grant", before=before, after=str(role), actor=actor
        )
    return membership, created


@transaction.atomic
def membership_revoke(*, store: Store, user, actor) -> bool:
    membership = Membership.objects.filter(store=store, user=user).first()
    if membership is None:
        return False
    membership_id = membership.pk  # delete() clears it
    membership.delete()
    _audit_membership(
        membership_id, store, user, "revoke", before=membership.role, after=None, actor=actor
    )
    return True


def _audit_store(store: Store, action: str, *, before, fields, actor) -> None:
    audit_record(
        action=action,
        object_type="stores.store",
        object_id=store.pk,
        object_repr=store.code,
        store=store,
        before=before,
        after=field_values(store, fields),
        actor=actor,
    )


def _audit_membership(membership_id, store, user, verb, *, before, after, actor) -> None:
    audit_record(
        action=f"membership.{verb}",
        object_type="stores.membership",
        object_id=membership_id,
        object_repr=f"{user.get_username()} @ {store.code}",
        store=store,
        before=None if before is None else {"user": user.get_username(), "role": before},
        after=None if after is None else {"user": user.get_username(), "role": after},
        actor=actor,
    )
