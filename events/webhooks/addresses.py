"""Which receiver URLs a webhook may be sent to.

A webhook makes the server send requests where a store manager says: without a check it
could reach the metadata service of the cloud (169.254.169.254), the database, or any
host of the private network. A URL is refused when its host is, or resolves to, any
address that is not public (loopback, private, link-local, multicast, reserved,
unspecified, shared, IPv4-mapped to such), unless ``WEBHOOK_ALLOW_PRIVATE_NETWORKS`` is
set. It is checked when a subscription is saved and again at every delivery, since DNS
answers change; the delivery then connects to the very address it checked
(``events.webhooks.client``), so a second resolution cannot swap it.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2000
SCHEMES = {"http": 80, "https": 443}


class UrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why, for the API's 400."""


@dataclass(frozen=True)
class Receiver:
    """A checked URL: where to connect (``address``, one the host resolved to) and what
    to ask for (``host`` for the Host header and TLS, ``target`` the path and query)."""

    scheme: str
    host: str
    port: int
    target: str
    address: str


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, target) of an http(s) URL, or UrlRefused."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"A URL has at most {MAX_URL_LENGTH} characters.")
    if any(ord(character) <= 32 or ord(character) == 127 for character in url):
        raise UrlRefused("A URL has no spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused(f"Not a valid URL ({error}).") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UrlRefused("Only http and https URLs receive webhooks.")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("A URL with credentials in it is not accepted; use the signature.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("The URL names no host.")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, host, port or SCHEMES[scheme], target


def refusal_of_address(address: str) -> str | None:
    """Why webhooks may not go to ``address`` (an IP address), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address."
    if not ip.is_global:  # shared (100.64/10), documentation and other special ranges
        return f"{address} is not a public address."
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal address is itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UrlRefused(f"The host {host} does not resolve ({error}).") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def checked_receiver(url: str) -> Receiver:
    """The URL, resolved and checked: every address of its host must be public (one bad
    address refuses it, since a client may pick any), unless private networks are
    allowed. Raises UrlRefused."""
    scheme, host, port, target = parse(url)
    addresses = resolve(host, port)
    if not addresses:
        raise UrlRefused(f"The host {host} does not resolve.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            why = refusal_of_address(address)
            if why:
                raise UrlRefused(f"Webhooks are not sent to {host}: {why}")
    return Receiver(scheme, host, port, target, addresses[0])
