"""API authentication by DRF token, refusing keys that no token can have."""

from rest_framework import authentication, exceptions


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
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
