"""A webhook is never sent to a loopback, private, link-local or otherwise non-public
address (the cloud's metadata service, the database), whether the URL names it or its
host resolves to it: when it is saved and again when it is sent. Unless the deployment
allows private networks (development, tests)."""

import pytest

from events.models import DeliveryStatus, WebhookDelivery
from events.webhooks.addresses import UrlRefused, checked_receiver
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
