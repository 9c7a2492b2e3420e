"""The site's home page (/): where a newcomer starts and a member comes back to.

runserver prints http://127.0.0.1:8000/ and the admin's "View site" links here, so this
page answers the first question of anyone who opens it: where do I go next? Anonymous
visitors get the login and the API; a member gets their stores, each with its stock in
the admin and in the API, and the low-stock page of the stores they manage.
"""

from dataclasses import dataclass

from django.contrib import admin
from django.shortcuts import render

from stores.access import stores_visible_to
from stores.models import Role, Store

# A staff user sees every store: the page lists this many, and says how many more.
STORES_SHOWN = 50


@dataclass(frozen=True)
class StoreRow:
    store: Store
    role: Role

    @property
    def manages(self) -> bool:
        return self.role.includes(Role.MANAGER)


def home(request):
    context = admin.site.each_context(request)
    if request.user.is_authenticated:
        rows, more = store_rows(request.user)
        context.update(store_rows=rows, more_stores=more)
    return render(request, "home.html", context)


def store_rows(user) -> tuple[list[StoreRow], int]:
    """The first ``STORES_SHOWN`` stores ``user`` sees, by code, each with the role they
    hold there; and how many more they see. Queries do not grow with the stores: one for
    the stores, one per role above viewer, and a count only past the limit."""
    visible = stores_visible_to(user).order_by("code")
    stores = list(visible[: STORES_SHOWN + 1])
    more = visible.count() - STORES_SHOWN if len(stores) > STORES_SHOWN else 0
    stores = stores[:STORES_SHOWN]
    shown = [store.pk for store in stores]
    holding = {
        role: set(
            stores_visible_to(user, role=role).filter(pk__in=shown).values_list("pk", flat=True)
        )
        for role in (Role.MANAGER, Role.CLERK)
    }
    rows = []
    for store in stores:
        role = next((role for role, pks in holding.items() if store.pk in pks), Role.VIEWER)
        rows.append(StoreRow(store, role))
    return rows, more
