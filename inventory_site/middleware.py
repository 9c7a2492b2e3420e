"""The site's own middleware: the hot path pays only for what it uses.

Measured with bench/request_layers.py (README, "Performance"): in multiprocess mode
django-prometheus's Before and After middleware updated twelve series per request,
about a fifth of the CPU of ``/healthz``; the messages framework built its storage for
every request, though only the admin's pages show messages.
"""

import time

from django.contrib.messages.middleware import MessageMiddleware
from django_prometheus.middleware import Metrics

from inventory_site.api.errors import is_api_request

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
# Answered by probes and scrapers, never with a message to show.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestMetricsMiddleware:
    """Requests by view, transport and method; responses by status, view and method;
    latency by view and method (the view and the middleware below this one): the
    series of django-prometheus's that /metrics documents, under their names, and
    exceptions by type and view. Three series per request, not twelve.

    Goes last in MIDDLEWARE, where django-prometheus's After middleware went. The label
    values are bounded (view names of the URLconf, status codes, METHODS), so the
    children looked up are kept per process instead of asked for on every request."""

    def __init__(self, get_response):
        self.get_response = get_response
        metrics = Metrics.get_instance()
        self.requests = metrics.requests_by_view_transport_method
        self.responses = metrics.responses_by_status_view_method
        self.latency = metrics.requests_latency_by_view_method
        self.exceptions_by_type = metrics.exceptions_by_type
        self.exceptions_by_view = metrics.exceptions_by_view
        self.children = {}

    def __call__(self, request):
        began = time.perf_counter()
        response = self.get_response(request)
        view, method = view_name(request), request_method(request)
        self.child(self.responses, str(response.status_code), view, method).inc()
        self.child(self.latency, view, method).observe(time.perf_counter() - began)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        transport = "https" if request.is_secure() else "http"
        self.child(self.requests, view_name(request), transport, request_method(request)).inc()

    def process_exception(self, request, exception):
        self.exceptions_by_type.labels(type=type(exception).__name__).inc()
        self.exceptions_by_view.labels(view=view_name(request)).inc()

    def child(self, metric, *labels):
        key = (metric, *labels)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = metric.labels(*labels)
        return child


def view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match is not None else None) or "<unnamed view>"


def request_method(request) -> str:
    return request.method if request.method in METHODS else "<invalid method>"


class PageMessageMiddleware(MessageMiddleware):
    """Django's messages, for the pages only: no API answer or probe shows one."""

    def process_request(self, request):
        if not (is_api_request(request) or request.path in PROBE_PATHS):
            super().process_request(request)

    def process_response(self, request, response):
        if hasattr(request, "_messages"):
            return super().process_response(request, response)
        return response
