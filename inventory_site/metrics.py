"""``GET /metrics``: django-prometheus's counters plus gauges read live from the database.

Counters are kept per process (and merged across gunicorn workers through
PROMETHEUS_MULTIPROC_DIR). A gauge such as the audit backlog is a fact of the database,
not of a process, so it is collected at scrape time by the collectors registered here.
"""

import os

import prometheus_client
from django.http import HttpResponse
from prometheus_client import multiprocess

LIVE_REGISTRY = prometheus_client.CollectorRegistry(auto_describe=True)


def register_live_collector(collector) -> None:
    LIVE_REGISTRY.register(collector)


def metrics(request):
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    body = prometheus_client.generate_latest(registry) + prometheus_client.generate_latest(
        LIVE_REGISTRY
    )
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
