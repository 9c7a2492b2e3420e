"""Who is this user and what may they do in a store: the one answer for the API, the
admin and the HTML pages.

Two things give a user power over a store:

- a membership: ``viewer < clerk < manager`` in that store;
- staff model permissions (Django's, checked with ``user.has_perm``, which a superuser
  passes and which Django caches on the user object): a staff user holds, in every
  store, ``manager`` with ``stock.change_stocklevel``, ``viewer`` with
  ``stock.view_stocklevel``, and no role otherwise. ``is_staff`` alone grants nothing.

A user who is both holds the higher of the two roles. A store where the user holds no
role is invisible: the API answers 404 as for a store that does not exist. The catalog,
the stores themselves and their memberships are managed with the model permissions of
those models (``catalog.add_product``, ``stores.change_store``,
``stores.add_membership``, ...); a store's managers by membership manage its members too.

Everything that decides access goes through the functions below. The store and the
user's membership role there come from the lookup cache (``inventory_site.lookup_cache``),
as the token's user does (``accounts.authentication``): a warm process answers without a
query, and a change retires the entries once it commits (``stores.receivers``).
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied as PagePermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from rest_framework.exceptions import NotFound, PermissionDenied

from inventory_site.lookup_cache import fields_of, instance_from, lookups

from .models import Membership, Role, Store

# The staff permission that gives each role in every store, highest first.
STAFF_ROLE_PERMISSIONS = (
    (Role.MANAGER, "stock.change_stocklevel"),
    (Role.VIEWER, "stock.view_stocklevel"),
)
# Staff with this permission see every audit event, of every store and of none.
AUDIT_EVERY_EVENT_PERMISSION = "audit.view_auditevent"
# The audit actions that viewers and clerks see of their stores (without the address).
STOCK_AUDIT_ACTION_PREFIXES = ("stock.", "reservation.")


def is_active_user(user) -> bool:
    return user.is_authenticated and user.is_active


def has_staff_permission(user, permission: str) -> bool:
    """``user`` is active staff holding the model ``permission`` ("app_label.codename")."""
    return is_active_user(user) and user.is_staff and user.has_perm(permission)


def staff_role(user) -> Role | None:
    """The role ``user``'s staff permissions give in every store, or None."""
    if not (is_active_user(user) and user.is_staff):
        return None
    for role, permission in STAFF_ROLE_PERMISSIONS:
        if user.has_perm(permission):
            return role
    return None


def highest(*roles: Role | None) -> Role | None:
    held = [Role(role) for role in roles if role]
    return max(held, key=lambda role: role.rank, default=None)


def memberships_of(user) -> list[tuple[int, str, Role]]:
    """(store id, store code, role) of each of ``user``'s memberships, by store id: one
    query, remembered on the user object for the rest of the request, as Django
    remembers permissions."""
    if not is_active_user(user):
        return []
    if not hasattr(user, "_inventory_memberships"):
        rows = (
            Membership.objects.filter(user=user)
            .order_by("store_id")
            .values_list("store_id", "store__code", "role")
        )
        user._inventory_memberships = [
            (store_id, code, Role(role)) for store_id, code, role in rows
        ]
    return user._inventory_memberships


def membership_roles(user) -> frozenset[Role]:
    """The roles ``user`` holds by membership in any store."""
    return frozenset(role for _, _, role in memberships_of(user))


def is_store_member(user) -> bool:
    return bool(membership_roles(user))


def highest_role_anywhere(user) -> Role | None:
    """The highest role ``user`` holds in any store, None when they see no store."""
    from_staff = staff_role(user)
    if from_staff is Role.MANAGER:
        return from_staff
    return highest(from_staff, *membership_roles(user))


def may_use_admin(user) -> bool:
    """Staff and store members log in to the admin; what they then see follows their
    roles and permissions."""
    return is_active_user(user) and (user.is_staff or is_store_member(user))


# --- Roles in stores ----------------------------------------------------------------


def role_in_store(user, store_or_code: Store | str) -> tuple[Store | None, Role | None]:
    """The store as ``user`` sees it and the role they hold there, from the lookup cache
    (``inventory_site.lookup_cache``; at most one query on a miss).

    (None, None) when the store does not exist or the user holds no role there.
    """
    if not is_active_user(user):
        return None, None
    code = store_or_code.code if isinstance(store_or_code, Store) else store_or_code
    entry = _store_and_membership(user, code)
    if entry is None:
        return None, None
    role = highest(staff_role(user), entry["membership"])
    if not role:
        return None, None
    if isinstance(store_or_code, Store):
        return store_or_code, role
    return instance_from(Store, entry["store"]), role


def membership_role(user, store: Store) -> Role | None:
    """The role ``user`` holds in ``store`` by membership alone."""
    if not is_active_user(user):
        return None
    entry = _store_and_membership(user, store.code)
    return Role(entry["membership"]) if entry and entry["membership"] else None


def _store_and_membership(user, code: str) -> dict | None:
    """The store ``code`` and ``user``'s membership role there, as plain data (None: no
    such store), through the lookup cache."""

    def load():
        store = (
            Store.objects.filter(code=code)
            .annotate(
                membership_role=Subquery(
                    Membership.objects.filter(store=OuterRef("pk"), user=user).values("role")[:1]
                )
            )
            .first()
        )
        if store is None:
            return None
        return {"store": fields_of(store), "membership": store.membership_role}

    return lookups.get("store-role", f"{user.pk}:{code}", load)


def known_store_id(user_id, code: str) -> int | None:
    """The id of store ``code`` if this process holds it in memory for ``user_id`` (no
    I/O, no check of its generation: a guess, for reading ahead)."""
    entry = lookups.peek("store-role", f"{user_id}:{code}")
    return entry["store"]["id"] if entry else None


def stores_visible_to(user, *, role: Role = Role.VIEWER) -> QuerySet[Store]:
    """The stores where ``user`` holds at least ``role``: every store when their staff
    permissions give it, else those where their membership does.

    The memberships are read when this is called, not when the queryset is: a list read
    later from a replica (``inventory_site.replicas``) is scoped by the user's stores as
    the primary has them, so a membership revoked a moment ago shows no store there."""
    store_ids = store_ids_visible_to(user, role=role)
    if store_ids is None:
        return Store.objects.all()
    return Store.objects.filter(pk__in=store_ids)


def store_ids_visible_to(user, *, role: Role = Role.VIEWER) -> list[int] | None:
    """The ids of ``stores_visible_to(user, role=role)``, in order; None when that is
    every store (staff). No query beyond ``memberships_of``'s.

    Lists over millions of rows filter by these numbers rather than by a subquery: the
    planner reads ``store_id IN (3, 7)`` through the index leading with the store, in its
    order, where a subquery may lead it to walk the index of every store.
    """
    if not is_active_user(user):
        return []
    from_staff = staff_role(user)
    if from_staff and from_staff.includes(role):
        return None
    return [store_id for store_id, _, held in memberships_of(user) if held.includes(role)]


@dataclass(frozen=True)
class _Refusal:
    status: int  # 404: the store is not there for this user; 403: the role is too low
    detail: str


def _check_store(user, code: str, role: Role) -> tuple[Store | None, _Refusal | None]:
    store, held = role_in_store(user, code)
    if store is None:
        return None, _Refusal(404, "No such store.")
    if not held.includes(role):
        return None, _Refusal(403, f"This needs the {role.label.lower()} role in store {code}.")
    return store, None


def store_for(user, code: str, *, role: Role = Role.VIEWER) -> Store:
    """For the API: the store ``code`` if ``user`` holds at least ``role`` there.

    A store where the user holds no role answers exactly like one that does not exist
    (404), so the API never tells who else is a customer; a role too low answers 403.
    """
    store, refusal = _check_store(user, code, role)
    if refusal is None:
        return store
    raise (NotFound if refusal.status == 404 else PermissionDenied)(refusal.detail)


def store_for_page(user, code: str, *, role: Role = Role.VIEWER) -> Store:
    """``store_for`` for HTML pages: Django's 404 and 403 pages instead of JSON."""
    store, refusal = _check_store(user, code, role)
    if refusal is None:
        return store
    raise (Http404 if refusal.status == 404 else PagePermissionDenied)(refusal.detail)


def require_permission(user, permission: str, *, to: str) -> None:
    """For the API: 403 unless ``user`` is staff holding ``permission``."""
    if not has_staff_permission(user, permission):
        raise PermissionDenied(f"Only staff with the {permission} permission {to}.")


def may_manage_members(user, store: Store, *permissions: str) -> bool:
    """``user`` manages ``store`` by membership, or is staff holding one of
    ``permissions`` (``stores.*_membership`` model permissions)."""
    if any(has_staff_permission(user, permission) for permission in permissions):
        return True
    return membership_role(user, store) is Role.MANAGER


# Staff holding any of these see every store in the store and membership endpoints,
# whatever their stock permissions: they administer stores, not stock.
STORE_ADMINISTRATION_PERMISSIONS = (
    "stores.view_store",
    "stores.change_store",
    "stores.view_membership",
    "stores.add_membership",
    "stores.change_membership",
    "stores.delete_membership",
)


def stores_listed_for(user) -> QuerySet[Store]:
    """The stores ``GET /stores/`` shows: where ``user`` holds a role, or every store for
    staff holding a permission on stores or memberships."""
    if any(has_staff_permission(user, p) for p in STORE_ADMINISTRATION_PERMISSIONS):
        return Store.objects.all()
    return stores_visible_to(user)


def store_for_administration(user, code: str, *permissions: str) -> Store:
    """For the store and member endpoints: staff holding one of ``permissions`` reach
    every store (404 only for one that does not exist); anyone else as ``store_for``."""
    if any(has_staff_permission(user, permission) for permission in permissions):
        store = Store.objects.filter(code=code).first()
        if store is None:
            raise NotFound("No such store.")
        return store
    return store_for(user, code)


def store_for_members(user, code: str, *permissions: str) -> Store:
    """For the API: the store ``code`` if ``user`` may list or change its members (see
    ``may_manage_members``); 404 for a store the user does not see, else 403."""
    store = store_for_administration(user, code, *permissions)
    require_member_permission(user, store, *permissions)
    return store


def require_member_permission(user, store: Store, *permissions: str) -> None:
    if not may_manage_members(user, store, *permissions):
        raise PermissionDenied(
            f"This needs the manager role in store {store.code}, or the "
            f"{' or '.join(permissions)} permission."
        )


# --- Bulk stock jobs ----------------------------------------------------------------

# Staff with this permission follow every bulk job, of every store.
BULK_JOB_VIEW_PERMISSION = "stock.view_bulkjob"


def may_follow_bulk_job(user, store: Store, *, created_by_id: int | None) -> bool:
    """Whether ``user`` sees a bulk job of ``store`` and its progress (API.md "Bulk"):
    staff holding ``stock.view_bulkjob``, the store's managers (by membership or staff
    permission), and the job's creator while they hold any role in the store, as for
    everything else of a store: a creator whose membership was revoked sees it no more.
    Everyone else gets the 404 of a job that does not exist."""
    if has_staff_permission(user, BULK_JOB_VIEW_PERMISSION):
        return True
    _, role = role_in_store(user, store)
    if role is None:
        return False
    return role.includes(Role.MANAGER) or (created_by_id is not None and created_by_id == user.pk)


# --- The audit log ------------------------------------------------------------------


@dataclass(frozen=True)
class AuditVisibility:
    """What of the audit log a user sees (``audit.selectors`` applies it).

    ``every_event``: every event, of every store and of none, addresses included.
    Otherwise every event of the stores of ``full_store_ids`` (where they manage) with
    its address, and of ``stock_store_ids`` (where they hold any role) the stock and
    reservation events only, without the address: viewers and clerks see what happened
    to stock, not who was granted which role nor the addresses people work from. None
    stands for every store (``store_ids_visible_to``).
    """

    every_event: bool
    full_store_ids: list[int] | None
    stock_store_ids: list[int] | None


def audit_visibility(user) -> AuditVisibility:
    if has_staff_permission(user, AUDIT_EVERY_EVENT_PERMISSION):
        return AuditVisibility(True, None, None)
    return AuditVisibility(
        False, store_ids_visible_to(user, role=Role.MANAGER), store_ids_visible_to(user)
    )
