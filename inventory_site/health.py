"""Liveness (/healthz) and readiness (/readyz) probes."""

import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .celery import app as celery_app

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    """No database, cache or broker is touched: a dependency outage must not get the
    web process restarted."""
    return JsonResponse({"status": "ok"})


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_cache():
    key, value = f"readyz:{uuid.uuid4().hex}", "ok"
    cache.set(key, value, timeout=5)
    if cache.get(key) != value:
        raise RuntimeError("the value written could not be read back")
    cache.delete(key)


def check_broker():
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    return "ok"


CHECKS = {"database": check_database, "cache": check_cache, "broker": check_broker}


@never_cache
@require_GET
def readyz(request):
    """200 when the database, the cache and the broker answer; 503 naming those that do
    not. (In embedded mode the broker is in-process and reported as "eager".)

    The answer names a failing dependency and nothing more: an error's text carries
    host names, ports and database roles, which are for the log, not for whoever can
    reach the probe."""
    results, failed = {}, []
    for name, check in CHECKS.items():
        try:
            results[name] = check() or "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check %s failed: %s: %s", name, type(error).__name__, error)
            results[name] = "error"
            failed.append(name)
    if failed:
        body = {"status": "unavailable", "failed": failed, "checks": results}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ready", "checks": results})
