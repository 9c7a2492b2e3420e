"""Many values as ONE statement parameter: an array on PostgreSQL, a JSON array on
SQLite. A placeholder per value would exceed either database's parameter limit long
before 100,000 values, and one parameter keeps the statement text the same whatever
the number of rows."""

import json

from django.db import connection


def id_rows(ids: list[int]) -> tuple[str, object]:
    """A subquery of one ``id`` column holding ``ids``, and its one parameter."""
    if connection.vendor == "postgresql":
        return "(SELECT unnest(%s::bigint[]) AS id)", ids
    return "(SELECT value AS id FROM json_each(%s))", json.dumps(ids)


def pair_rows(pairs: list[tuple[int, int]]) -> tuple[str, list]:
    """A subquery of ``store_id, product_id`` rows holding ``pairs``, and its parameters."""
    if connection.vendor == "postgresql":
        return (
            "(SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS pair (store_id, product_id))",
            [[store for store, _ in pairs], [product for _, product in pairs]],
        )
    return (
        "(SELECT json_extract(value, '$[0]') AS store_id, json_extract(value, '$[1]') AS "
        "product_id FROM json_each(%s))",
        [json.dumps(pairs)],
    )
