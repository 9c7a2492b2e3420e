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
