"""Helpers for rate-limit tests: read a django-ratelimit counter without counting, start
a test in a fresh counting window, and check a 429 in the API's error shape.

django-ratelimit counts in fixed windows (one per counter); ``start_in_a_fresh_window``
waits out the last seconds of a window so that no test straddles two of them.
"""

import re
import time

from django.test import RequestFactory
from django_ratelimit.core import get_usage

from tests.api import assert_error


def usage(group: str, key, rate: str, *, user=None, **meta) -> dict:
    """The counter of ``group`` for a request with ``meta``, read without counting."""
    request = RequestFactory().get("/", **meta)
    request.user = user
    return get_usage(request, group=group, key=key, rate=rate)


def username_key(name: str):
    """The key of the per-username login counter of ``name`` (already normalised)."""
    return lambda _group, _request: name


def start_in_a_fresh_window(group: str, key, rate: str, *, margin=5, user=None, **meta):
    time_left = usage(group, key, rate, user=user, **meta)["time_left"]
    if time_left < margin:
        time.sleep(time_left + 1)


def retry_after(response) -> int:
    value = response["Retry-After"]
    assert re.fullmatch(r"[1-9]\d*", value), value
    return int(value)


def assert_throttled(response) -> int:
    """A 429 in the API's error shape; returns Retry-After (whole seconds, >= 1)."""
    body = assert_error(response, 429, "throttled")
    seconds = retry_after(response)
    unit = "second" if seconds == 1 else "seconds"
    assert body == {
        "detail": f"Request was throttled. Expected available in {seconds} {unit}.",
        "code": "throttled",
    }
    return seconds
