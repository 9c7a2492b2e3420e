"""Template helpers of the stock pages in the admin."""

from django import template
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from stores.access import stores_visible_to
from stores.models import Role, Store

from ..models import LOW_STOCK, StockLevel

register = template.Library()

YOUR_STORES_SHOWN = 20  # on the admin's home page; the stock list's filter has them all


def movement_changes(movement) -> list[str]:
    """What a movement did, in words: the change of on hand and what it came to, and of
    reserved when a hold changed it ("on hand +5 → 15", "reserved +2 → 2")."""
    changes = []
    if movement.delta_on_hand or not movement.delta_reserved:
        changes.append(f"on hand {movement.delta_on_hand:+d} → {movement.on_hand_after}")
    if movement.delta_reserved:
        changes.append(f"reserved {movement.delta_reserved:+d} → {movement.reserved_after}")
    return changes


@register.filter
def low_label(level):
    """A warning on a level at or below its reorder point, nothing on a healthy one
    (Django's boolean icons would put a green tick on the level that needs attention)."""
    if level.is_low:
        return format_html('<span class="low-stock">{}</span>', "LOW")
    return ""


def movement_reasons(movement) -> list[str]:
    """Why a movement happened, as far as it says: its reason, reference and note (the
    store dashboard's script says the same of the movements API's rows)."""
    return [part for part in (movement.reason, movement.reference, movement.note) if part]


@register.filter
def movement_why(movement) -> str:
    return " · ".join(movement_reasons(movement))


@register.filter
def movement_change(movement):
    return format_html_join(
        mark_safe("<br>"), "{}", ((change,) for change in movement_changes(movement))
    )


def stores_with_low_counts(user) -> QuerySet[Store]:
    """The stores ``user`` sees, by code, each annotated with ``managed`` (the user holds
    the manager role there) and ``low_count`` (its levels at or below their reorder
    point, as the low-stock page counts them): one query."""
    managed = stores_visible_to(user, role=Role.MANAGER).filter(pk=OuterRef("pk"))
    low = (
        StockLevel.objects.filter(LOW_STOCK, store=OuterRef("pk"))
        .order_by()
        .values("store")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        stores_visible_to(user)
        .annotate(managed=Exists(managed), low_count=Coalesce(Subquery(low), 0))
        .order_by("code")
    )


@register.inclusion_tag("admin/stock/your_stores.html", takes_context=True)
def your_stores(context):
    """The admin home page's "Your stores" box: each store's stock, and for the stores
    the user manages their low-stock page and CSV files."""
    stores = list(stores_with_low_counts(context["request"].user)[: YOUR_STORES_SHOWN + 1])
    return {
        "your_stores": stores[:YOUR_STORES_SHOWN],
        "more_stores": len(stores) > YOUR_STORES_SHOWN,
    }
