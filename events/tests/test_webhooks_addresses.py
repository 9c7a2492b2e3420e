"""A webhook is never sent to a loopback, private, link-local or otherwise non-public
address (the cloud's metadata service, the database), whether the URL names it or its
host resolves to it, or names an IPv6 address that carries one: when it is saved and
again when it is sent. Unless the deployment allows private networks (development,
tests)."""

import ipaddress

import pytest

from events.models import DeliveryStatus, WebhookDelivery
from events.webhooks.addresses import UrlRefused, checked_receiver, refusal_of_address
from events.webhooks.services import subscription_create
from tests.factories import StoreFactory

REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://10.0.0.5/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://localhost/hook",
    "http://localhost./hook",
]
MALFORMED = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "http://user:secret@example.com/hook",
    "http:///nohost",
    "http://example.com:99999/",
    "http://exa mple.com/",
    "not a url",
    "",
    "https://example.com/" + "a" * 2000,
]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_of_non_public_addresses_are_refused(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    with pytest.raises(UrlRefused, match="Webhooks are not sent to"):
        checked_receiver(url)


@pytest.mark.parametrize("url", REFUSED)
def test_with_private_networks_allowed_they_are_accepted(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    assert checked_receiver(url).port in {80, 8080}


@pytest.mark.parametrize("url", MALFORMED)
def test_urls_that_are_not_plain_http_are_refused_whatever_the_setting(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    with pytest.raises(UrlRefused):
        checked_receiver(url)


def test_a_public_address_is_accepted_and_connected_to_as_resolved(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    receiver = checked_receiver("https://93.184.215.14:8443/in?x=1")

    assert (receiver.scheme, receiver.address, receiver.port, receiver.target) == (
        "https",
        "93.184.215.14",
        8443,
        "/in?x=1",
    )


# --- IPv6 addresses that carry an IPv4 address -------------------------------------------


def mapped(ipv4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:  # ::ffff:0:0/96
    return ipaddress.IPv6Address(0xFFFF << 32 | int(ipv4))


def sixtofour(ipv4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:  # 2002::/16, bits 16-48
    return ipaddress.IPv6Address(0x2002 << 112 | int(ipv4) << 80 | 1)


def teredo(ipv4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    """2001::/32, a public Teredo server (65.54.227.120), flags and port, then the
    client's IPv4 address XOR 0xffffffff."""
    server = int(ipaddress.IPv4Address("65.54.227.120"))
    return ipaddress.IPv6Address(
        0x20010000 << 96 | server << 64 | 0x8000 << 48 | 0x63BF << 32 | int(ipv4) ^ 0xFFFFFFFF
    )


def nat64(ipv4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:  # 64:ff9b::/96
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ipv4))


def local_nat64(ipv4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:  # 64:ff9b:1::/48
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b:1::")) | int(ipv4))


def compatible(ipv4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:  # ::a.b.c.d
    return ipaddress.IPv6Address(int(ipv4))


def translated(ipv4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:  # ::ffff:0:a.b.c.d
    return ipaddress.IPv6Address(0xFFFF << 48 | int(ipv4))


EMBEDDINGS = {
    "IPv4-mapped": mapped,
    "6to4": sixtofour,
    "Teredo": teredo,
    "NAT64": nat64,
    "local NAT64": local_nat64,
    "IPv4-compatible": compatible,
    "IPv4-translated": translated,
}
NOT_GLOBAL_IPV4 = [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.10", "private"),
    ("169.254.169.254", "private"),  # link-local: the cloud's metadata service
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "private"),  # reserved
    ("100.64.0.1", "not a public"),  # shared address space (carrier-grade NAT)
    ("192.0.2.1", "documentation"),
]


def test_each_embedding_carries_the_address_the_stdlib_reads_back():
    ipv4 = ipaddress.IPv4Address("192.0.2.33")

    assert mapped(ipv4).ipv4_mapped == ipv4
    assert sixtofour(ipv4).sixtofour == ipv4
    assert teredo(ipv4).teredo == (ipaddress.IPv4Address("65.54.227.120"), ipv4)
    assert [str(embed(ipv4)) for embed in (nat64, local_nat64, compatible, translated)] == [
        "64:ff9b::c000:221", "64:ff9b:1::c000:221", "::c000:221", "::ffff:0:c000:221"
    ]  # fmt: skip


@pytest.mark.parametrize("embedding", EMBEDDINGS)
@pytest.mark.parametrize("ipv4, why", NOT_GLOBAL_IPV4)
def test_an_ipv6_address_carrying_a_non_public_ipv4_address_is_refused(
    settings, embedding, ipv4, why
):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    address = str(EMBEDDINGS[embedding](ipaddress.IPv4Address(ipv4)))

    refusal = refusal_of_address(address)
    with pytest.raises(UrlRefused, match="Webhooks are not sent to") as refused:
        checked_receiver(f"http://[{address}]:8080/hook")

    assert refusal is not None and refusal in str(refused.value)
    if embedding == "local NAT64":
        assert "a local-use NAT64 address" in refusal
        return
    assert f" {embedding.split()[-1]} address of {ipv4}, " in refusal
    if why != "documentation":
        assert why in refusal


@pytest.mark.parametrize(
    "address", ["64:ff9b:1::808:808", "64:ff9b:1:808:808::", "64:ff9b:1:ffff::1"]
)
def test_any_local_use_nat64_address_is_refused_wherever_its_ipv4_address_sits(address):
    """RFC 8215's prefix puts the IPv4 address where the operator's prefix length says,
    which the address does not tell: refused whatever it seems to carry."""
    assert refusal_of_address(address) == (
        f"{address} is a local-use NAT64 address, whose IPv4 address is not known."
    )


@pytest.mark.parametrize(
    "address, why",
    [
        ("2002:7f00:1::", "is a 6to4 address of 127.0.0.1, a loopback address."),
        ("2002:a9fe:a9fe::1", "is a 6to4 address of 169.254.169.254, a private address."),
        ("2002:c0a8:10a:1::2", "is a 6to4 address of 192.168.1.10, a private address."),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe",
         "is a Teredo address of 127.0.0.1, a loopback address."),
        ("64:ff9b::a9fe:a9fe", "is a NAT64 address of 169.254.169.254, a private address."),
        ("64:ff9b:1::a00:1", "is a local-use NAT64 address, whose IPv4 address is not known."),
        ("::127.0.0.1", "is an IPv4-compatible address of 127.0.0.1, a loopback address."),
        ("::ffff:127.0.0.1", "is an IPv4-mapped address of 127.0.0.1, a loopback address."),
        ("::ffff:0:a00:1", "is an IPv4-translated address of 10.0.0.1, a private address."),
        ("::1", "is a loopback address."),  # what it is, no IPv4 address in it
    ],
)  # fmt: skip
def test_the_refusal_names_the_ipv4_address_it_carries(address, why):
    assert refusal_of_address(address) == f"{address} {why}"


@pytest.mark.parametrize("address", ["2002:808:808::1", "::ffff:8.8.8.8", "2606:4700::1111"])
def test_an_ipv6_address_carrying_a_public_ipv4_address_is_judged_as_itself(settings, address):
    """6to4 of a public address is public; IPv4-mapped is its IPv4 address. (Teredo,
    NAT64 and IPv4-compatible ranges are not public in themselves: refused whatever
    they carry.)"""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    assert refusal_of_address(address) is None
    assert checked_receiver(f"https://[{address}]/hook").address == str(
        ipaddress.ip_address(address)
    )


@pytest.mark.parametrize(
    "address", [teredo(ipaddress.IPv4Address("8.8.8.8")), "64:ff9b::808:808", "::8.8.8.8"]
)
def test_ranges_not_public_in_themselves_stay_refused_with_a_public_ipv4_inside(address):
    assert refusal_of_address(str(address)) is not None


@pytest.mark.parametrize("embedding", EMBEDDINGS)
def test_with_private_networks_allowed_embedded_ones_are_accepted(settings, embedding):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    address = str(EMBEDDINGS[embedding](ipaddress.IPv4Address("127.0.0.1")))

    assert checked_receiver(f"http://[{address}]/hook").address == address


@pytest.mark.django_db
def test_a_url_that_became_private_is_refused_when_sent(webhook_settings, receiver, stock_changes):
    """Saved while allowed, sent when no longer: as a host whose DNS answer changed to
    a private address would be. The attempt fails and the receiver hears nothing."""
    store = StoreFactory()
    subscription_create(store=store, url=receiver.url, event_types=[], actor=None)
    webhook_settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    stock_changes.receive(store)

    delivery = WebhookDelivery.objects.get()
    assert receiver.received == []
    assert (delivery.status, delivery.last_response_code) == (DeliveryStatus.FAILED, None)
    assert "127.0.0.1 is a loopback address" in delivery.last_error
