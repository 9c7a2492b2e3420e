"""Idempotency-Key handling for the stock POST endpoints (API.md, "Idempotency").

The first request with a key runs; a retry by the same user with the same key and body
within the TTL gets the stored status, body and ETag and changes nothing; the same key
with another body (or another endpoint) gets 422.

How a key is claimed, so that the stock rows are never locked for it:

1. The key's record is written first, pending (no answer yet), by one autocommit
   ``INSERT ... ON CONFLICT DO NOTHING``: whoever inserts it owns the key.
2. The owner runs the request; a purchase is then one autocommit statement, so the hot
   row is locked for that statement and its commit only, never while a record is written.
3. The owner stores the answer in the record (one more autocommit UPDATE), after the row
   lock is gone.

Another request with the same key that finds the record pending waits up to
``IN_FLIGHT_WAIT_SECONDS`` for the answer and replays it; if there is still none, it
answers 409 ``idempotency_key_in_flight`` with ``Retry-After``. It never runs the request.

The rule that keeps a key from ever applying twice: **a pending record is deleted only
by its owner, and only when the owner knows that no stock change committed** (no
``stock_changed`` was sent while it ran). So:

- an answer below 500 is stored and replayed;
- a 5xx (or an error) with no committed change deletes the record: the key can be
  retried and runs again; but not after a database error, which can come after the
  server committed (a connection lost with the commit's acknowledgement);
- a 5xx after a committed change (the answer could not be built), or after a database
  error, or a process that died between claiming the key and storing the answer, leaves
  the record pending:
  whether the change was applied cannot be told from the record, so the key is never run
  again. After ``UNFINISHED_AFTER`` such a record answers 409
  ``idempotency_key_unfinished`` at once (the ledger shows whether the change was made;
  a new key makes a new request). An expired record, pending or not, is deleted and the
  key runs again, as after any TTL.

Inside a caller's ``atomic`` block (tests that run in one transaction) the record and
the request share that transaction, and a 5xx rolls both back, as one savepoint.
"""

import hashlib
import json
import time
from contextvars import ContextVar
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from .models import IdempotencyRecord, StockLevel
from .signals import stock_changed

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# How long a request waits for the answer of another one with its key still in flight.
# Short: a waiting request holds a web worker (2 sync workers by default).
IN_FLIGHT_WAIT_SECONDS = 0.5
# A record still pending this long after its request began was left by a request that
# died (web requests time out after 30 s, see bin/run).
UNFINISHED_AFTER = timedelta(minutes=2)


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different request."
    default_code = "idempotency_key_reused"


class IdempotencyKeyInFlight(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = (
        "A request with this Idempotency-Key is still running; retry to get its answer."
    )
    default_code = "idempotency_key_in_flight"
    wait = 1  # Retry-After, in seconds (DRF's exception handler sets the header)


class IdempotencyKeyUnfinished(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = (
        "The first request with this Idempotency-Key did not finish, so whether it changed "
        "stock is unknown here: the ledger shows it. Use a new key for a new request."
    )
    default_code = "idempotency_key_unfinished"


def idempotently(view, request, execute) -> Response:
    """Answer ``request`` with ``execute()``, at most once per user and Idempotency-Key.

    Precondition: the caller has already checked that the user may make this request
    now. A replay answers for an effect that has happened, but whoever asks again must
    still hold the role it needed: a clerk whose membership was revoked gets 404, not
    yesterday's answer.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return execute()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise exceptions.ValidationError(
            {HEADER: [f"Use 1 to {MAX_KEY_LENGTH} printable ASCII characters."]}, code="invalid"
        )
    return _run_once(view, request, key, _fingerprint(request), execute)


def _fingerprint(request) -> str:
    canonical = json.dumps(
        [request.method, request.path, request.data],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _run_once(view, request, key, fingerprint, execute) -> Response:
    give_up_at = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    pause = 0.005
    while True:
        if time.monotonic() > give_up_at:
            raise IdempotencyKeyInFlight()
        record_id = _claim(request.user, key, fingerprint)
        if record_id is not None:
            return _run_as_owner(view, record_id, execute)
        record = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
        if record is None:  # freed meanwhile (expired, or its owner failed): claim again
            continue
        if record.expires_at <= timezone.now():
            if _expired(IdempotencyRecord.objects.filter(pk=record.pk)).delete()[0]:
                continue
            # Pending, and its request may still be running (a TTL set very short): wait.
        if record.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if record.response_status is not None:
            return _replay(record)
        if timezone.now() - record.created_at > UNFINISHED_AFTER:
            raise IdempotencyKeyUnfinished()
        if time.monotonic() + pause > give_up_at:
            raise IdempotencyKeyInFlight()
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _claim(user, key, fingerprint) -> int | None:
    """Insert the key's pending record; its id if this request inserted it, None if a
    record for (user, key) exists. One statement, which commits at once outside
    ``atomic``: the record is visible to every other request before the change runs."""
    table = IdempotencyRecord._meta.db_table
    quote = connection.ops.quote_name
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {quote(table)}
                   (user_id, {quote("key")}, request_fingerprint, response_status,
                    response_body, response_etag, created_at, expires_at)
            VALUES (%s, %s, %s, NULL, NULL, '', %s, %s)
            ON CONFLICT (user_id, {quote("key")}) DO NOTHING
            RETURNING id
            """,
            [
                user.pk,
                key,
                fingerprint,
                now,
                now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _run_as_owner(view, record_id, execute) -> Response:
    """Run the request for the key's pending record ``record_id`` and store its answer;
    free the key when the request failed without changing stock (module docstring)."""
    if connection.in_atomic_block:
        return _run_in_callers_transaction(view, record_id, execute)
    changes = _ChangesSeen()
    token = _changes_seen.set(changes)
    try:
        response = _respond(view, execute, changes)
    except Exception as error:
        changes.failed_with(error)
        if changes.certainly_unchanged:
            _free(record_id)
        raise
    finally:
        _changes_seen.reset(token)
    if response.status_code >= 500:
        if changes.certainly_unchanged:
            _free(record_id)
        return response
    _store(record_id, response)
    return response


def _run_in_callers_transaction(view, record_id, execute) -> Response:
    """The request and its record in the caller's transaction, as one savepoint: a 5xx
    rolls back what the request changed, and the record with it."""
    with transaction.atomic():
        response = _respond(view, execute)
        if response.status_code >= 500:
            transaction.set_rollback(True)
    if response.status_code >= 500:
        _free(record_id)
    else:
        _store(record_id, response)
    return response


def _store(record_id, response) -> None:
    IdempotencyRecord.objects.filter(pk=record_id).update(
        response_status=response.status_code,
        response_body=json.dumps(response.data, cls=DjangoJSONEncoder),
        response_etag=response.get("ETag", ""),
    )


def _free(record_id) -> None:
    IdempotencyRecord.objects.filter(pk=record_id, response_status__isnull=True).delete()


def _replay(record) -> Response:
    headers = {REPLAY_HEADER: "true"}
    if record.response_etag:
        headers["ETag"] = record.response_etag
    return Response(
        json.loads(record.response_body), status=record.response_status, headers=headers
    )


def _respond(view, execute, changes=None) -> Response:
    """Run the view; an error DRF knows becomes its response, so it can be stored too."""
    try:
        return execute()
    except Exception as error:  # noqa: BLE001 - handle_exception re-raises what it cannot map
        if changes is not None:
            changes.failed_with(error)
        return view.handle_exception(error)


class _ChangesSeen:
    """Whether a stock change committed while an owner ran its request, or may have: a
    database error can come after the server committed (the connection lost with the
    commit's acknowledgement), so after one the change is never taken as not made."""

    committed = False
    database_failed = False

    def failed_with(self, error: BaseException) -> None:
        if isinstance(error, DatabaseError):
            self.database_failed = True

    @property
    def certainly_unchanged(self) -> bool:
        return not (self.committed or self.database_failed)


_changes_seen: ContextVar[_ChangesSeen | None] = ContextVar("idempotency_changes", default=None)


def _note_committed_change(sender, **kwargs) -> None:
    """``stock_changed`` is sent after a change commits, in the thread that made it."""
    changes = _changes_seen.get()
    if changes is not None:
        changes.committed = True


stock_changed.connect(
    _note_committed_change, sender=StockLevel, dispatch_uid="stock.idempotency.changes"
)


def purge_expired_idempotency_records() -> int:
    """Delete records past their TTL; returns how many. Run periodically by beat."""
    deleted, _ = _expired(IdempotencyRecord.objects.all()).delete()
    return deleted


def _expired(records):
    """Records past their TTL, except a pending one whose request may still be running
    (younger than UNFINISHED_AFTER): freeing its key would let a retry run it again."""
    now = timezone.now()
    return records.filter(expires_at__lte=now).exclude(
        response_status__isnull=True, created_at__gt=now - UNFINISHED_AFTER
    )
