"""Liveness probe: answers as long as the process can serve a request."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """No database, cache or broker is touched: a dependency outage must not get the
    web process restarted."""
    return JsonResponse({"status": "ok"})
