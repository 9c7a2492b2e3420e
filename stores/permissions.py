"""The tenancy rule of the API: 404 for a store the user cannot see, 403 for a missing role."""

from rest_framework.exceptions import NotFound, PermissionDenied

from .models import Role, Store
from .selectors import store_and_role_for


def store_for(user, code: str, *, role: Role = Role.VIEWER) -> Store:
    """The store ``code`` if ``user`` holds at least ``role`` there.

    A store the user is not a member of answers exactly like one that does not exist, so
    the API never tells who else is a customer.
    """
    store, held = store_and_role_for(user, code)
    if store is None:
        raise NotFound("No such store.")
    if not held.includes(role):
        raise PermissionDenied(f"This needs the {role.label.lower()} role in store {code}.")
    return store
