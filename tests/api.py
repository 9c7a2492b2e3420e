"""Helpers for API tests: clients authenticated the way real clients are, and the error
shape every error response must have."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def api_client(user=None) -> APIClient:
    """A client sending ``Authorization: Token <key>`` for ``user`` (anonymous if None)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is a JSON error of ``status`` with a human ``detail`` and a ``code``
    (and ``errors`` on 400: by field, or the list of a bulk job's bad items); returns
    the body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    if status == 400:
        errors = body["errors"]
        if isinstance(errors, list):
            assert errors and all(
                set(item) == {"index", "sku", "detail", "code"} for item in errors
            ), body
        else:
            assert isinstance(errors, dict), body
    return body
