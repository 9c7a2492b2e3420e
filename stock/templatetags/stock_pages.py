"""Template helpers of the stock pages in the admin."""

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

register = template.Library()


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
def movement_change(movement):
    return format_html_join(
        mark_safe("<br>"), "{}", ((change,) for change in movement_changes(movement))
    )
