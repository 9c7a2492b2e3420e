"""The console shows a refused request as one line, and an error with its traceback."""

import logging
import sys

import pytest
from django.test import Client

from inventory_site.log_filters import RefusalsWithoutTraceback
from stores.models import Role
from tests.factories import StoreFactory, member


def record(status_code: int) -> logging.LogRecord:
    try:
        raise RuntimeError("why")
    except RuntimeError:
        exc_info = sys.exc_info()
    made = logging.LogRecord("django.request", logging.WARNING, "", 0, "msg", (), exc_info)
    made.status_code = status_code
    return made


@pytest.mark.parametrize("status_code, keeps_traceback", [(403, False), (404, False), (500, True)])
def test_only_errors_keep_their_traceback(status_code, keeps_traceback):
    filtered = record(status_code)

    assert RefusalsWithoutTraceback().filter(filtered)
    assert (filtered.exc_info is not None) == keeps_traceback


@pytest.mark.django_db
def test_a_clerk_refused_a_manager_page_logs_one_line(caplog):
    store = StoreFactory(code="berlin-01")
    client = Client()
    client.force_login(member("clerk", store, Role.CLERK))

    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/stores/berlin-01/low-stock/").status_code == 403

    [logged] = [r for r in caplog.records if r.name == "django.request"]
    assert RefusalsWithoutTraceback().filter(logged) and logged.exc_info is None
