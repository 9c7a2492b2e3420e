"""HTML pages of the stock app (the API is in apis.py)."""

from urllib.parse import quote

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render

from events import channels
from inventory_site.replicas.routing import replica_reads
from stores.access import store_for_page
from stores.models import Role

from .dashboard import LATEST_MOVEMENTS, LevelFilter, dashboard_snapshot, summary
from .models import MovementKind
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


@login_required
def store_dashboard(request, code):
    """A store at a glance for anyone who may see it (viewers and up): its levels with
    low and out badges, filtered and searched (``?q=``, ``?low=1``, ``?page=``), the
    header's counts and the latest movements. Its script keeps them current from the
    store's events without a reload (``stock/static/stock/store_dashboard.js``)."""
    store = store_for_page(request.user, code, role=Role.VIEWER)
    level_filter = LevelFilter.from_query(request.GET)
    snapshot = dashboard_snapshot(store, level_filter, request.GET.get("page") or 1)
    context = {
        **admin.site.each_context(request),
        "store": store,
        "filter": level_filter,
        "snapshot": snapshot,
        "live": _live_config(store, snapshot, level_filter),
    }
    return render(request, "stock/store_dashboard.html", context)


@login_required
def store_dashboard_summary(request, code):
    """The dashboard header's counts and the event ``seq`` they hold, as JSON: the page's
    script reads them again after an event of a level it does not show."""
    store = store_for_page(request.user, code, role=Role.VIEWER)
    seq, counts, day = summary(store)
    return JsonResponse({"seq": seq, **_counts(counts), **_day(day)})


def _live_config(store, snapshot, level_filter) -> dict:
    """What the page's script needs, embedded with ``json_script``: where the events
    come from and the ``seq`` the page shows, from which it resumes without a gap."""
    api = f"/api/v1/stores/{quote(store.code, safe='')}"
    levels = snapshot.levels
    return {
        "store": store.code,
        "seq": snapshot.seq,
        # None without Redis (the embedded mode): no stream can be served, so the page
        # polls from the start rather than asking for one that is refused.
        "stream_url": (
            f"{settings.EVENTS_STREAM_URL.rstrip('/')}{api}/events/stream/"
            if channels.uses_redis()
            else None
        ),
        "events_url": f"{api}/events/",
        "movements_url": f"{api}/movements/?page_size={LATEST_MOVEMENTS}",
        "summary_url": f"/stores/{quote(store.code, safe='')}/summary/",
        "poll_seconds": settings.DASHBOARD_POLL_SECONDS,
        # New levels get a row only when the page shows every level of the store.
        "shows_every_level": not level_filter.narrows and not levels.has_other_pages(),
        "counts": _counts(snapshot.counts),
        "kinds": dict(MovementKind.choices),
        **_day(snapshot.day),
    }


def _counts(counts) -> dict:
    return {"low": counts.low, "out": counts.out, "changes_today": counts.changes_today}


def _day(day) -> dict:
    return {"day_start": day.start.isoformat(), "day_end": day.end.isoformat()}
