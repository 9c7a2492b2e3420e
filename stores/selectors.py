"""Read queries for stores. Every store-scoped query starts from ``stores_visible_to``."""

from django.db.models import QuerySet

from .models import Role, Store


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
