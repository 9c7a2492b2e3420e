"""``event_type`` and ``event_type_sql`` are one definition said twice: for any levels,
the SQL CASE run by the test database answers what the Python function does."""

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import EventType, event_type, event_type_sql

pytestmark = pytest.mark.django_db

# Small numbers around the reorder point and zero, where the types change.
units = st.integers(min_value=0, max_value=12) | st.integers(min_value=0, max_value=1_000_000)
triples = st.tuples(units, units, units)


def types_in_sql(rows: list[tuple[int, int, int]]) -> list[str]:
    """The SQL CASE of each (available before, available after, reorder point) row."""
    values = " UNION ALL ".join(
        ["SELECT CAST(%s AS BIGINT) AS n, CAST(%s AS BIGINT) AS b, CAST(%s AS BIGINT) AS a, "
         "CAST(%s AS BIGINT) AS r"] * len(rows)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {event_type_sql('t.b', 't.a', 't.r')} FROM ({values}) AS t ORDER BY t.n",
            [value for n, row in enumerate(rows) for value in (n, *row)],
        )
        return [row[0] for row in cursor.fetchall()]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(triples, min_size=1, max_size=40))
def test_the_sql_case_agrees_with_event_type(rows):
    assert types_in_sql(rows) == [str(event_type(*row)) for row in rows]


def test_each_type_has_its_case():
    rows = [(3, 0, 1), (0, 2, 1), (5, 1, 1), (5, 4, 1), (0, 0, 0)]

    assert [event_type(*row) for row in rows] == [
        EventType.OUT,
        EventType.BACK_IN_STOCK,
        EventType.LOW,
        EventType.CHANGED,
        EventType.CHANGED,
    ]
    assert types_in_sql(rows) == [str(event_type(*row)) for row in rows]
