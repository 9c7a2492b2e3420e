"""``event_type`` and ``event_type_sql`` are one definition said twice: for any levels,
the SQL CASE run by the test database answers what the Python function does, with the
reorder point before the change or without it (the same as after)."""

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import EventType, event_type, event_type_sql

pytestmark = pytest.mark.django_db

# Small numbers around the reorder point and zero, where the types change.
units = st.integers(min_value=0, max_value=12) | st.integers(min_value=0, max_value=1_000_000)
triples = st.tuples(units, units, units)
quadruples = st.tuples(units, units, units, units)


def types_in_sql(rows: list[tuple[int, ...]]) -> list[str]:
    """The SQL CASE of each (available before, available after, reorder point[, reorder
    point before]) row."""
    moved = len(rows[0]) == 4
    columns = ["b", "a", "r", "p"][: len(rows[0])]
    values = " UNION ALL ".join(
        ["SELECT CAST(%s AS BIGINT) AS n, "
         + ", ".join(f"CAST(%s AS BIGINT) AS {column}" for column in columns)] * len(rows)
    )  # fmt: skip
    case = event_type_sql("t.b", "t.a", "t.r", "t.p" if moved else None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {case} FROM ({values}) AS t ORDER BY t.n",
            [value for n, row in enumerate(rows) for value in (n, *row)],
        )
        return [row[0] for row in cursor.fetchall()]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(triples, min_size=1, max_size=40))
def test_the_sql_case_agrees_with_event_type(rows):
    assert types_in_sql(rows) == [str(event_type(*row)) for row in rows]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(quadruples, min_size=1, max_size=40))
def test_the_sql_case_agrees_with_event_type_when_the_reorder_point_moved(rows):
    assert types_in_sql(rows) == [str(event_type(*row)) for row in rows]


@given(triples)
def test_the_reorder_point_before_defaults_to_the_one_after(row):
    assert event_type(*row) == event_type(*row, row[2])


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


def test_moving_the_reorder_point_alone_makes_a_level_low_only_if_it_was_not_and_has_units():
    # (available before, after, reorder point after, reorder point before)
    rows = [(4, 4, 4, 3), (4, 4, 9, 4), (4, 4, 3, 4), (0, 0, 5, 0), (4, 4, 3, 0)]

    assert [event_type(*row) for row in rows] == [
        EventType.LOW,
        EventType.CHANGED,
        EventType.CHANGED,
        EventType.CHANGED,
        EventType.CHANGED,
    ]
    assert types_in_sql(rows) == [str(event_type(*row)) for row in rows]
