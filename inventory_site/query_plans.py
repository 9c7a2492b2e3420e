"""What PostgreSQL's planner makes of a query, without running it: the estimates the
admin shows instead of counting millions of rows, and the plans the tests hold the read
paths to (no sequential scan, no sort of a large table)."""

import json

from django.db import connections

# The tables that grow with the deployment: 5,000,000 levels at 10,000 stores x 500
# products, a movement per change, an audit event per change, a stock event per change
# (kept STOCK_EVENT_RETENTION_DAYS).
LARGE_TABLES = ("stock_stocklevel", "stock_movement", "audit_event", "events_stockevent")


def query_plan(sql: str, params, *, using: str = "default") -> dict:
    """The top node of ``EXPLAIN (FORMAT JSON)`` of ``sql``: "Node Type", "Plan Rows",
    "Total Cost", its children under "Plans"."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (document,) = cursor.fetchone()
    if isinstance(document, str):
        document = json.loads(document)
    return document[0]["Plan"]


def queryset_plan(queryset) -> dict:
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    return query_plan(sql, params, using=queryset.db)
