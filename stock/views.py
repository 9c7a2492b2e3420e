"""HTML pages of the stock app (the API is in apis.py)."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from stores.models import Role
from stores.selectors import store_and_role_for

from .selectors import low_stock_levels_of_store, recent_movements_by_product

RECENT_MOVEMENTS = 5


@login_required
def low_stock_page(request, code):
    """What a manager should reorder in one store: every level at or below its reorder
    point, with its latest movements."""
    store, role = store_and_role_for(request.user, code)
    if store is None:
        raise Http404("No such store.")
    if not role.includes(Role.MANAGER):
        raise PermissionDenied("The low-stock page is for the store's managers.")
    levels = list(low_stock_levels_of_store(store))
    recent = recent_movements_by_product(
        store, [level.product_id for level in levels], per_product=RECENT_MOVEMENTS
    )
    rows = [(level, recent.get(level.product_id, [])) for level in levels]
    context = {**admin.site.each_context(request), "store": store, "rows": rows}
    return render(request, "stock/low_stock.html", context)
