"""One error shape for the whole API: ``{"detail", "code"}`` (+ ``"errors"`` on 400).

``api_exception_handler`` is DRF's EXCEPTION_HANDLER: it maps the stock domain errors to
their status codes and reshapes DRF's own errors. The ``json_*`` views are Django's
handler404/handler500 etc., answering JSON for paths under /api/ (unknown URLs, errors
raised outside DRF) and Django's usual HTML pages elsewhere.
"""

import logging
from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from stock.exceptions import (
    BulkRejected,
    InsufficientStock,
    InvalidStockOperation,
    ProductInactive,
    ReservationNotActive,
    StockError,
    StoreInactive,
    VersionMismatch,
)

from .parsers import PayloadTooLarge

logger = logging.getLogger(__name__)

SERVER_ERROR = {"detail": "The server failed to answer; try again.", "code": "server_error"}
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}

DOMAIN_STATUS = {
    InvalidStockOperation: status.HTTP_400_BAD_REQUEST,
    InsufficientStock: status.HTTP_409_CONFLICT,
    ReservationNotActive: status.HTTP_409_CONFLICT,
    ProductInactive: status.HTTP_409_CONFLICT,
    StoreInactive: status.HTTP_409_CONFLICT,
    VersionMismatch: status.HTTP_412_PRECONDITION_FAILED,
}


def api_exception_handler(exc, context):
    if isinstance(exc, StockError):
        return domain_error_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        # Raised by Django when the view first reads request.data (Content-Length over
        # the limit, or a chunked body that grows past it).
        exc = PayloadTooLarge(
            "The request body is larger than the limit of "
            f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        # 415, as HTTP says, with a sentence on what to send instead.
        exc = exceptions.UnsupportedMediaType(
            None, f"{exc.detail} Send the body as JSON (Content-Type: application/json)."
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an error DRF knows: a bug. Log it with its traceback and answer JSON, also
        # with DEBUG on, where Django would otherwise render its HTML debug page.
        logger.error("Unhandled error in %s", context["request"].path, exc_info=exc)
        return Response(SERVER_ERROR, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    response.data = error_body(exc, response.data)
    return response


def error_body(exc, data) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        fields = ", ".join(errors)
        return {
            "detail": f"The request has invalid fields: {fields}.",
            "code": "invalid",
            "errors": errors,
        }
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    body = {"detail": str(detail), "code": code}
    if isinstance(exc, exceptions.ParseError):
        body["errors"] = {"non_field_errors": [str(detail)]}
    return body


def domain_error_response(exc: StockError) -> Response:
    body = {"detail": exc.detail, "code": exc.code}
    if isinstance(exc, BulkRejected):  # API.md "Bulk": each bad item, listed
        body["errors"] = exc.errors
    elif isinstance(exc, InvalidStockOperation):
        body["errors"] = {"non_field_errors": [exc.detail]}
    if isinstance(exc, InsufficientStock):
        body["shortages"] = [asdict(shortage) for shortage in exc.shortages]
        if len(exc.shortages) == 1:
            body["available"] = exc.shortages[0].available
    if isinstance(exc, VersionMismatch):
        body["current_version"] = exc.current
    if isinstance(exc, ReservationNotActive):
        body["status"] = exc.status
    status_code = next(DOMAIN_STATUS[cls] for cls in type(exc).__mro__ if cls in DOMAIN_STATUS)
    return Response(body, status=status_code)


@csrf_exempt
def unknown_api_path(request, path=""):
    """Catches every unmatched path under /api/, so that a 404 there is JSON even
    with DEBUG on (Django's debug 404 page is HTML), whatever the method.

    A plain Django view, not a DRF one: the browsable API builds its breadcrumbs from
    the DRF views that each prefix of the path resolves to, and a DRF catch-all would
    add "Unknown Api Path" for every prefix that is not an endpoint (``/api/v1/stores``
    without its slash). Being no DRF view, it also answers a browser with JSON rather
    than a browsable page offering forms to send to a path that does not exist.

    A path that is an endpoint but for its trailing slash says so: Django redirects only
    a GET there, and a client's POST would otherwise get a bare "Not found."."""
    if not request.path.endswith("/") and _is_endpoint(f"{request.path}/"):
        body = {
            "detail": f"Not found; the endpoint is {request.path}/ (with a slash).",
            "code": "not_found",
        }
        return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
    return JsonResponse(NOT_FOUND, status=status.HTTP_404_NOT_FOUND)


def _is_endpoint(path: str) -> bool:
    try:
        return resolve(path).func is not unknown_api_path
    except Resolver404:
        return False


def is_api_request(request) -> bool:
    return request.path.startswith("/api/")


def json_bad_request(request, exception=None):
    if is_api_request(request):
        return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def json_permission_denied(request, exception=None):
    if is_api_request(request):
        body = {"detail": "You do not have permission to do this.", "code": "permission_denied"}
        return JsonResponse(body, status=403)
    return defaults.permission_denied(request, exception)


def json_not_found(request, exception=None):
    if is_api_request(request):
        return JsonResponse(NOT_FOUND, status=404)
    return defaults.page_not_found(request, exception)


def json_server_error(request):
    if is_api_request(request):
        return JsonResponse(SERVER_ERROR, status=500)
    return defaults.server_error(request)
