"""Which receiver URLs a webhook may be sent to.

A webhook makes the server send requests where a store manager says: without a check it
could reach the metadata service of the cloud (169.254.169.254), the database, or any
host of the private network. A URL is refused when its host is, or resolves to, any
address that is not public (loopback, private, link-local, multicast, reserved,
unspecified, shared), or is an IPv6 address that carries such an IPv4 address (IPv4-mapped,
6to4, Teredo, NAT64, IPv4-compatible or -translated: a packet to it ends up at that IPv4
address, through a relay, a gateway or the host's own stack), unless
``WEBHOOK_ALLOW_PRIVATE_NETWORKS`` is set. It is checked when a subscription is saved and
again at every delivery, since DNS answers change; the delivery then connects to the very
address it checked (``events.webhooks.client``), so a second resolution cannot swap it.
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


# IPv6 ranges whose last 32 bits are an IPv4 address (the stdlib names the others:
# ``ipv4_mapped``, ``sixtofour``, ``teredo``). NAT64 (RFC 6052): the well-known prefix;
# IPv4-translated (RFC 2765) and IPv4-compatible (RFC 4291, deprecated; not :: and ::1,
# which are what they are).
LAST_32_BITS_IPV4 = (
    (ipaddress.IPv6Network("64:ff9b::/96"), "a NAT64 address"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "an IPv4-translated address"),
    (ipaddress.IPv6Network("::/96"), "an IPv4-compatible address"),
)
# The local-use NAT64 prefix (RFC 8215) places its IPv4 address where the operator's
# prefix length says, which an address does not tell: any address in it is refused.
LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
NOT_PUBLIC = ("loopback", "private", "link_local", "multicast", "reserved", "unspecified")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address a packet to ``ip`` is delivered to, and what kind of address
    ``ip`` is for it; None when ``ip`` carries none."""
    if ip.ipv4_mapped:
        return "an IPv4-mapped address", ip.ipv4_mapped
    if ip.sixtofour:
        return "a 6to4 address", ip.sixtofour
    if ip.teredo:  # (server, client): the client's address, already un-XORed
        return "a Teredo address", ip.teredo[1]
    if int(ip) <= 1:  # :: and ::1
        return None
    for network, kind in LAST_32_BITS_IPV4:
        if ip in network:
            return kind, ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_of_address(address: str) -> str | None:
    """Why webhooks may not go to ``address`` (an IP address), or None. An IPv6 address
    carrying an IPv4 address is judged by both (an IPv4-mapped one is its IPv4 address
    only, written as IPv6)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64:
            return f"{address} is a local-use NAT64 address, whose IPv4 address is not known."
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            kind, ipv4 = embedded
            why = _not_public(ipv4)
            if why:
                return f"{address} is {kind} of {ipv4}, {why}."
            if ip.ipv4_mapped:
                return None
    why = _not_public(ip)
    return f"{address} is {why}." if why else None


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for kind in NOT_PUBLIC:
        if getattr(ip, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not ip.is_global:  # shared (100.64/10), documentation and other special ranges
        return "not a public address"
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
