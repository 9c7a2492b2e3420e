"""HTML pages of the stock app (the API is in apis.py)."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from inventory_site.replicas.routing import replica_reads
from stores.access import store_for_page
from stores.models import Role

from .selectors import low_stock_levels_in_page_order, recent_movements_by_product

RECENT_MOVEMENTS = 5


@login_required
def low_stock_page(request, code):
    """What a manager should reorder in one store: every level at or below its reorder
    point, with its latest movements. 404 for a store the user holds no role in, 403
    below manager."""
    store = store_for_page(request.user, code, role=Role.MANAGER)
    context = {**admin.site.each_context(request), "store": store, "rows": _low_stock_rows(store)}
    return render(request, "stock/low_stock.html", context)


@replica_reads
def _low_stock_rows(store) -> list:
    """(level, its latest movements) for each low level: a report a replica may serve."""
    levels = low_stock_levels_in_page_order(store)
    recent = recent_movements_by_product(
        store, [level.product_id for level in levels], per_product=RECENT_MOVEMENTS
    )
    return [(level, recent.get(level.product_id, [])) for level in levels]
