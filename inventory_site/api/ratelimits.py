"""Per-user and per-IP rate limits, counted by django-ratelimit in the shared cache."""

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.exceptions import Throttled


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies stand in front.

    Each trusted proxy appends the address it received the request from to
    X-Forwarded-For, so the client is the entry the outermost trusted proxy added; entries
    left of it are whatever the client chose to send.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [
            hop.strip()
            for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if hop.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META["REMOTE_ADDR"]


def enforce_rate_limit(request, *, group: str, key: str, rate: str) -> None:
    """Count this request against ``rate``; raise Throttled (429 + Retry-After) past it."""
    usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        raise Throttled(wait=max(usage["time_left"], 1))


def enforce_api_rate_limits(request) -> None:
    enforce_rate_limit(request, group="api-ip", key="ip", rate=settings.API_RATE_PER_IP)
    if request.user.is_authenticated:
        enforce_rate_limit(request, group="api-user", key="user", rate=settings.API_RATE_PER_USER)
