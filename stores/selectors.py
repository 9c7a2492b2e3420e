"""Read queries for stores. Every store-scoped query starts from ``stores_visible_to``."""

from django.db.models import QuerySet

from .models import Membership, Role, Store


def stores_visible_to(user, *, role: Role = Role.VIEWER) -> QuerySet[Store]:
    """The stores ``user`` may see, or only those where they hold at least ``role``.

    Staff see every store; anyone else sees the stores they are a member of.
    """
    if not user.is_authenticated or not user.is_active:
        return Store.objects.none()
    if user.is_staff:
        return Store.objects.all()
    allowed_roles = [r for r in Role if r.includes(role)]
    return Store.objects.filter(memberships__user=user, memberships__role__in=allowed_roles)


def store_and_role_for(user, code: str) -> tuple[Store | None, Role | None]:
    """The store ``code`` as ``user`` sees it, with the role they hold there (one query).

    (None, None) when the store does not exist or the user may not see it. Staff act as
    managers of every store.
    """
    if not user.is_authenticated or not user.is_active:
        return None, None
    if user.is_staff:
        store = Store.objects.filter(code=code).first()
        return store, (Role.MANAGER if store else None)
    membership = (
        Membership.objects.select_related("store").filter(user=user, store__code=code).first()
    )
    if membership is None:
        return None, None
    return membership.store, Role(membership.role)


def store_members(store: Store) -> QuerySet[Membership]:
    return store.memberships.select_related("user").order_by("user__username")


def is_store_member(user) -> bool:
    return user.is_authenticated and Membership.objects.filter(user=user).exists()
