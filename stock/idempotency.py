"""Idempotency-Key handling for the stock POST endpoints (API.md, "Idempotency").

The first request with a key runs; a retry by the same user with the same key and body
within the TTL gets the stored status and body and changes nothing; the same key with
another body (or another endpoint) gets 422.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different request."
    default_code = "idempotency_key_reused"


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
    for _ in range(3):
        with transaction.atomic():
            record = (
                IdempotencyRecord.objects.select_for_update()
                .filter(user=request.user, key=key)
                .first()
            )
            if record is not None and record.expires_at <= timezone.now():
                record.delete()
                record = None
            if record is not None:
                if record.request_fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                headers = {REPLAY_HEADER: "true"}
                if record.response_etag:
                    headers["ETag"] = record.response_etag
                return Response(
                    json.loads(record.response_body),
                    status=record.response_status,
                    headers=headers,
                )
            now = timezone.now()
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=request.user,
                        key=key,
                        request_fingerprint=fingerprint,
                        created_at=now,
                        expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
                    )
            except IntegrityError:
                # A request with the same key committed while this one waited on the
                # unique index: go round and replay (or refuse) against its record.
                continue
            response = _respond(view, execute)
            if response.status_code >= 500:
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = json.dumps(response.data, cls=DjangoJSONEncoder)
            record.response_etag = response.get("ETag", "")
            record.save(update_fields=["response_status", "response_body", "response_etag"])
            return response
    raise exceptions.APIException("The Idempotency-Key is contended; retry.")


def _respond(view, execute) -> Response:
    """Run the view; an error DRF knows becomes its response, so it can be stored too."""
    try:
        return execute()
    except Exception as error:  # noqa: BLE001 - handle_exception re-raises what it cannot map
        return view.handle_exception(error)


def purge_expired_idempotency_records() -> int:
    """Delete records past their TTL; returns how many. Run periodically by beat."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
