"""``GET /metrics``: django-prometheus's counters plus what is read live at each scrape.

Counters are kept per process (and merged across gunicorn workers through
PROMETHEUS_MULTIPROC_DIR). A gauge such as the audit backlog, a replica's lag or a
queue's depth is a fact of the deployment, not of a process, so it is collected at
scrape time by the collectors registered here; so are the workers' task failures, which
they count in the shared cache (``celery_metrics``). README "Metrics" lists them all.
"""

import hmac
import os

import prometheus_client
from django.conf import settings
from django.http import HttpResponse
from prometheus_client import multiprocess

from .celery import app as celery_app
from .celery_metrics import QueueDepthCollector, TaskOutcomeCollector
from .replicas.metrics import ReplicaCollector

LIVE_REGISTRY = prometheus_client.CollectorRegistry(auto_describe=True)


def register_live_collector(collector) -> None:
    LIVE_REGISTRY.register(collector)


def metrics(request):
    """The Prometheus text. With METRICS_TOKEN set, only for ``Authorization: Bearer
    <METRICS_TOKEN>``: the counters show who uses the API how, and the audit backlog."""
    if settings.METRICS_TOKEN and not _bearer_token_matches(request, settings.METRICS_TOKEN):
        response = HttpResponse(
            "The metrics need Authorization: Bearer <METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    body = prometheus_client.generate_latest(registry) + prometheus_client.generate_latest(
        LIVE_REGISTRY
    )
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)


def _bearer_token_matches(request, token: str) -> bool:
    """Compared in constant time, so the answer's timing does not tell how much of a
    guess was right."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


# The deployment's own state, read at each scrape: the replicas and Celery.
register_live_collector(ReplicaCollector())
register_live_collector(QueueDepthCollector(celery_app))
register_live_collector(TaskOutcomeCollector(celery_app))
