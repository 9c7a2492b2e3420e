"""The statements of a delivery run on PostgreSQL, one round trip each: taking the
subscription (with what the run needs to know of it, and its first batch of events),
recording a batch of first attempts (the cursor moved, the deliveries and their
attempts inserted, only while the run holds the subscription; the run's last batch lets
go of it too, with whether work is left), and letting go (when a run ends otherwise).
The first batch of up to 50 events comes with the lease, each later one costs a read of
the log; each is recorded in one statement whatever its size. So a run of one batch
with no retry due (the usual run: the events of a coalescing window) is two
statements; retries due go through the ORM. ``delivery`` does the same through the ORM
elsewhere.

On this machine's PostgreSQL a statement costs its backend about 0.3 ms of CPU before
it touches a row: as much as the rows of a few deliveries. Fewer statements per run is
what keeps webhooks from slowing the stock writes that share the database
(``bench/events_bench.py``)."""

import functools

from django.db import connection

from catalog.models import Product
from events.models import StockEvent
from stores.models import Store

from ..models import WebhookAttempt, WebhookDelivery, WebhookSubscription


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "subscriptions": quote(WebhookSubscription._meta.db_table),
        "deliveries": quote(WebhookDelivery._meta.db_table),
        "attempts": quote(WebhookAttempt._meta.db_table),
        "events": quote(StockEvent._meta.db_table),
        "products": quote(Product._meta.db_table),
        "stores": quote(Store._meta.db_table),
    }


def _due_again(subscriptions: str, deliveries: str) -> str:
    """Whether the subscription's row has deliveries due again (``delivery._due_again``)."""
    return f"""
        EXISTS (SELECT 1 FROM {deliveries} AS due
                 WHERE due.subscription_id = {subscriptions}.id
                   AND due.status = ANY(%(due_statuses)s)
                   AND due.next_attempt_at <= %(now)s)
    """


def _work_left(subscriptions: str, deliveries: str, events: str) -> str:
    """Of the subscription's row as the statement leaves it: whether it has something
    to send now (``delivery.work_due``)."""
    return f"""
        {subscriptions}.is_active
        AND ({subscriptions}.held_until IS NULL OR {subscriptions}.held_until <= %(now)s)
        AND ({_due_again(subscriptions, deliveries)}
             OR EXISTS (SELECT 1 FROM {events} AS event
                         WHERE event.store_id = {subscriptions}.store_id
                           AND event.seq > {subscriptions}.sent_seq))
    """


# The columns of an event in ``first_events``, in order (``delivery.EVENT_FIELDS``).
_EVENT_COLUMNS = (
    "event.seq, event.type, product.sku, event.on_hand, event.reserved, event.available, "
    "event.reorder_point, event.version, event.at"
)


@functools.cache
def lease() -> str:
    """Take the subscription until ``%(until)s`` if it is active and nobody holds it;
    answers its row, its store's code, whether retries are due, and, unless it is held
    (``held_until``), the first ``%(size)s`` events past its cursor (``first_events``: a
    JSON array of arrays of ``_EVENT_COLUMNS``, oldest first). No row: not taken.

    The row is locked whoever holds it, and whether it is free is decided on the row as
    it is once the lock is had: a run letting go (its last record, or ``release``) may
    not have committed yet, and is waited for, not taken for the holder. Otherwise the
    message of an event committed while that statement ran would find the subscription
    held and end, and that statement, reading before the event's commit, would not have
    seen it either: the event would wait for the sweep."""
    t = _tables()
    return f"""
        WITH taken AS (
            UPDATE {t["subscriptions"]}
               SET sending_until = CASE WHEN sending_until IS NULL OR sending_until < %(now)s
                                        THEN %(until)s ELSE sending_until END
             WHERE id = %(id)s AND is_active
            RETURNING {t["subscriptions"]}.*
        )
        SELECT taken.*,
            (SELECT code FROM {t["stores"]} WHERE id = taken.store_id) AS store_code,
            {_due_again("taken", t["deliveries"])} AS retries_due,
            (SELECT coalesce(json_agg(json_build_array({_EVENT_COLUMNS}) ORDER BY event.seq),
                             '[]')
               FROM (SELECT * FROM {t["events"]}
                      WHERE store_id = taken.store_id AND seq > taken.sent_seq
                        AND (taken.held_until IS NULL OR taken.held_until <= %(now)s)
                      ORDER BY seq LIMIT %(size)s) AS event
               JOIN {t["products"]} AS product ON product.id = event.product_id)
                AS first_events
          FROM taken
         WHERE taken.sending_until = %(until)s
    """


@functools.cache
def record_sent() -> str:
    """Move the cursor, renew the lease (or, with ``%(release)s``, let go), set or end
    the hold and count the failures, while ``%(leased_until)s`` is still the run's; then
    insert a delivery per event sent (its body is the payload stored) with its first
    attempt, from arrays. Answers whether the run still held the subscription (else
    nothing was written) and, let go, whether work is left (as ``release``)."""
    t = _tables()
    return f"""
        WITH moved AS (
            UPDATE {t["subscriptions"]}
               SET sent_seq = %(sent_up_to)s,
                   sending_until = CASE WHEN %(release)s THEN NULL
                                        ELSE %(renewed)s::timestamptz END,
                   held_until = CASE WHEN %(hold_changes)s THEN %(held_until)s::timestamptz
                                     ELSE held_until END,
                   consecutive_failures = CASE WHEN %(succeeded_since)s THEN %(failures)s
                                               ELSE consecutive_failures + %(failures)s END
             WHERE id = %(subscription)s AND sending_until = %(leased_until)s
            RETURNING id, store_id,
                CASE WHEN %(release)s
                     THEN {_work_left(t["subscriptions"], t["deliveries"], t["events"])}
                END AS work_left
        ), sent AS (
            SELECT * FROM unnest(%(seq)s::bigint[], %(type)s::text[], %(body)s::text[],
                                 %(status)s::text[], %(code)s::integer[],
                                 %(duration)s::integer[], %(error)s::text[],
                                 %(at)s::timestamptz[], %(retry_at)s::timestamptz[])
                AS sent (seq, type, body, status, code, duration, error, at, retry_at)
        ), delivered AS (
            INSERT INTO {t["deliveries"]} (
                subscription_id, store_id, seq, event_type, payload, status, attempts,
                schedule_start, next_attempt_at, last_response_code, last_duration_ms,
                last_error, created_at, updated_at
            )
            SELECT moved.id, moved.store_id, sent.seq, sent.type, sent.body::jsonb,
                   sent.status, 1, 0, sent.retry_at, sent.code, sent.duration, sent.error,
                   %(now)s, %(now)s
              FROM sent CROSS JOIN moved
            RETURNING id, seq
        ), attempted AS (
            INSERT INTO {t["attempts"]} (
                delivery_id, number, succeeded, response_code, duration_ms, error, at,
                next_attempt_at
            )
            SELECT delivered.id, 1, sent.status = %(succeeded)s, sent.code, sent.duration,
                   sent.error, sent.at, sent.retry_at
              FROM delivered JOIN sent USING (seq)
        )
        SELECT count(*) = 1, bool_or(work_left) FROM moved
    """


@functools.cache
def release() -> str:
    """Let go of the subscription if ``%(leased_until)s`` is still the run's; answers
    whether work is left (no row: it was not the run's any more)."""
    t = _tables()
    return f"""
        UPDATE {t["subscriptions"]} SET sending_until = NULL
         WHERE id = %(id)s AND sending_until = %(leased_until)s
        RETURNING {_work_left(t["subscriptions"], t["deliveries"], t["events"])}
    """
