"""Writes to users' credentials."""

from django.db import transaction
from rest_framework.authtoken.models import Token

from audit.services import audit_record


@transaction.atomic
def token_for_user(*, user, actor) -> Token:
    """The user's API token, created (and audited) on first request. The key itself is
    never written to the audit log."""
    token, created = Token.objects.get_or_create(user=user)
    if created:
        audit_record(
            action="token.create",
            object_type="authtoken.token",
            object_id=user.pk,
            object_repr=f"API token of {user.get_username()}",
            actor=actor,
        )
    return token


def api_token_revoke(*, user, why: str, actor=None) -> bool:
    """Delete the user's API token, audited as its creation is; True if there was one.

    Called by ``User.save`` when the password changes (``actor`` is not known there:
    the request id of the audit event ties it to the request or command that did it).
    The next request with the old key answers 401; the user asks for a new token with
    the new password.
    """
    deleted, _ = Token.objects.filter(user=user).delete()
    if deleted:
        audit_record(
            action="token.revoke",
            object_type="authtoken.token",
            object_id=user.pk,
            object_repr=f"API token of {user.get_username()}",
            after={"why": why},
            actor=actor,
        )
    return bool(deleted)
