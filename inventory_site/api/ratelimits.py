"""Per-user and per-IP rate limits, counted by django-ratelimit in the shared cache."""

import ipaddress
import logging
import unicodedata

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.exceptions import Throttled

from inventory_site.cache_outage import CACHE_ERRORS, OutageLog, cache_circuit

logger = logging.getLogger(__name__)
outage = OutageLog(logger, "rate limits")


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies stand in front.

    Each trusted proxy appends the address it received the request from to
    X-Forwarded-For, so the client is the entry the outermost trusted proxy added; entries
    left of it are whatever the client chose to send. An entry that is no address (some
    proxies add ":port") is read without its port, or else ignored for REMOTE_ADDR.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [
            hop.strip()
            for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if hop.strip()
        ]
        if len(forwarded) >= proxies:
            address = _address_without_port(forwarded[-proxies])
            if address:
                return address
            logger.warning("unusable X-Forwarded-For entry %r", forwarded[-proxies])
    return request.META["REMOTE_ADDR"]


def _address_without_port(entry: str) -> str | None:
    candidates = [entry]
    if entry.startswith("[") and "]" in entry:  # [2001:db8::1]:443
        candidates.append(entry[1 : entry.index("]")])
    elif entry.count(":") == 1:  # 203.0.113.7:443
        candidates.append(entry.split(":")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def enforce_rate_limit(request, *, group: str, key: str, rate: str) -> None:
    """Count this request against ``rate``; raise Throttled (429 + Retry-After) past it.

    When the cache cannot count (or is skipped after failing moments ago, see
    ``inventory_site.cache_outage.Circuit``), RATELIMIT_FAIL_OPEN decides: let the
    request through, or refuse it as if the limit were hit.
    """
    try:
        with cache_circuit:
            usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    except CACHE_ERRORS as error:
        outage.failed(
            error,
            "letting requests through" if settings.RATELIMIT_FAIL_OPEN else "refusing requests",
        )
        if settings.RATELIMIT_FAIL_OPEN:
            return
        raise Throttled(wait=1) from error
    outage.succeeded()
    if usage is not None and usage["should_limit"]:
        raise Throttled(wait=max(usage["time_left"], 1))


def enforce_ip_rate_limit(request) -> None:
    enforce_rate_limit(request, group="api-ip", key="ip", rate=settings.API_RATE_PER_IP)


def enforce_user_rate_limit(request) -> None:
    """Precondition: authentication has run (an anonymous request is not counted here)."""
    if request.user.is_authenticated:
        enforce_rate_limit(request, group="api-user", key="user", rate=settings.API_RATE_PER_USER)


# --- Logins ------------------------------------------------------------------------------
# Every login path (the token endpoint, the admin's and the browsable API's login forms)
# counts an attempt before it checks the password: per client address, and per username
# whatever the address. An attempt past either limit is refused without authenticating,
# so it costs no password hash and records no failed-login audit event.


def login_username(username) -> str:
    """The name the per-username limit counts: "Alice", " alice" and "ALICE" share one
    counter, whichever of them exists (and a case-insensitive backend would match)."""
    return unicodedata.normalize("NFKC", str(username)).strip().casefold()


def enforce_login_username_rate_limit(request, *, username) -> None:
    """Count a login attempt against ``username``: one counter for every login path and
    every address. An empty name is not counted (no password is checked for it)."""
    name = login_username(username or "")
    if name:
        enforce_rate_limit(
            request,
            group="login-username",
            key=lambda _group, _request: name,
            rate=settings.LOGIN_RATE_PER_USERNAME,
        )


def enforce_login_form_rate_limits(request, *, username) -> None:
    """Count an attempt at a login form (admin, browsable API) per client address, then
    per username; raise Throttled past either."""
    enforce_rate_limit(request, group="login-form-ip", key="ip", rate=settings.LOGIN_RATE_PER_IP)
    enforce_login_username_rate_limit(request, username=username)
