"""Under /api/ errors are JSON also with DEBUG on, where Django's own pages are HTML."""

import pytest
from django.test import override_settings

from tests.api import api_client, assert_error
from tests.factories import UserFactory


@override_settings(DEBUG=True)
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/stores/x/stock/y/z/", "/api/v2/"])
def test_an_unknown_api_path_is_a_json_404_even_with_debug_on(db, path):
    response = api_client(UserFactory()).get(path)

    assert_error(response, 404, "not_found")


@override_settings(DEBUG=True)
def test_an_unexpected_error_in_an_api_view_is_a_json_500(db, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("stores.apis.stores_listed_for", broken)

    response = api_client(UserFactory()).get("/api/v1/stores/")

    assert_error(response, 500, "server_error")
    assert "Unhandled error in /api/v1/stores/" in caplog.text
    assert "RuntimeError: bug" in caplog.text
