"""Read queries for stores. Which stores a user may see is ``stores.access``'s answer."""

from django.db.models import QuerySet

from .models import Membership, Store


def store_members(store: Store) -> QuerySet[Membership]:
    return store.memberships.select_related("user").order_by("user__username")
