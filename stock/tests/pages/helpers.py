"""What the page tests read back from an answer, and the state a refused request must
leave as it was."""

import html
import re

from django.test import Client

from audit.models import AuditOutboxEntry
from stock.models import Movement, StockLevel

ADMIN_HEADER = '<div id="site-name"><a href="/admin/">Inventory</a></div>'


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in response.context["messages"]]


def stock_state() -> tuple:
    """Every level's numbers, and how many movements and audit records there are."""
    levels = list(
        StockLevel.objects.order_by("pk").values_list(
            "pk", "on_hand", "reserved", "reorder_point", "version"
        )
    )
    return levels, Movement.objects.count(), AuditOutboxEntry.objects.count()


def change_url(level) -> str:
    return f"/admin/stock/stocklevel/{level.pk}/change/"


def operation_url(level, operation) -> str:
    return f"/admin/stock/stocklevel/{level.pk}/{operation}/"


def refusal_of(response) -> str:
    """The sentence of the admin-styled 403 page, as the reader sees it."""
    text = response.content.decode()
    start = text.index('<p class="errornote" id="refusal">') + len(
        '<p class="errornote" id="refusal">'
    )
    return html.unescape(text[start : text.index("</p>", start)].strip())


def column(response, field: str) -> list[str]:
    """The inner HTML of one column of a changelist, row by row."""
    cells = re.findall(
        rf'<t[hd] class="field-{field}[^"]*">(.*?)</t[hd]>', response.content.decode(), re.DOTALL
    )
    return [cell.strip() for cell in cells]
