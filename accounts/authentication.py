"""API authentication by DRF token, refusing keys that no token can have, with the
token's user read from the lookup cache (``inventory_site.lookup_cache``)."""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from inventory_site.lookup_cache import fields_of, instance_from, lookups

# The user's fields a request may read. The password hash stays out of the cache: the
# user built from an entry has it deferred, so reading it (or saving the user) loads it.
UNCACHED_USER_FIELDS = frozenset({"password"})


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, with a key outside printable ASCII refused
    as a bad credential (401) before it reaches the database, where PostgreSQL cannot
    even compare a string holding a NUL (a 500 otherwise). A token sent as ``Bearer``
    (as many clients do by habit) is told which scheme to use, rather than that no
    credentials came."""

    def authenticate(self, request):
        scheme = authentication.get_authorization_header(request).split(b" ", 1)[0]
        if scheme.lower() == b"bearer":
            raise exceptions.AuthenticationFailed(
                "Send the API token as 'Authorization: Token <key>', not Bearer."
            )
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        if not (key.isascii() and key.isprintable()):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        entry = lookups.get("token", key, lambda: token_entry(key))
        if entry is None:
            # The gate names no user counter after it for a revoked key any more.
            lookups.forget("token", key)
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = user_from_entry(entry["user"])
        if not user.is_active:
            lookups.forget("token", key)
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token(key=key, user_id=user.pk, created=entry["created"])
        token.user = user
        return user, token


def token_entry(key: str) -> dict | None:
    """What a request needs of a token and its user, as plain data (None: no such
    token): the user's fields but the password, and a staff user's permissions, so that
    ``has_perm`` asks no query (only staff permissions give powers; a superuser's
    ``has_perm`` asks nothing anyway)."""
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None:
        return None
    return {"created": token.created, "user": user_entry(token.user)}


def user_entry(user) -> dict:
    fields = fields_of(user, leave_out=UNCACHED_USER_FIELDS)
    staff = user.is_active and user.is_staff and not user.is_superuser
    return {"fields": fields, "permissions": sorted(user.get_all_permissions()) if staff else None}


def user_from_entry(entry: dict):
    """A fresh user object from a cached entry (each request gets its own instance)."""
    user = instance_from(get_user_model(), entry["fields"])
    if entry["permissions"] is not None:
        user._perm_cache = set(entry["permissions"])
    return user


def cached_token_user_id(key: str) -> int | None:
    """The user of token ``key`` if this process holds it in memory (no I/O)."""
    entry = lookups.peek("token", key)
    return None if entry is None else entry["user"]["fields"]["id"]
