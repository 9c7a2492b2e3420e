"""The webhooks in the admin: a manager sees and adds the subscriptions of the stores
they manage, follows the deliveries, and sends one again."""

import pytest

from events.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from events.webhooks.services import subscription_create
from stores.models import Role
from tests.factories import MembershipFactory, StoreFactory, member

pytestmark = pytest.mark.django_db


def test_a_manager_sees_only_the_webhooks_of_the_stores_they_manage(webhook_settings, client):
    mine, theirs, viewed = StoreFactory(), StoreFactory(), StoreFactory()
    manager = member("manager", mine, Role.MANAGER)
    MembershipFactory(user=manager, store=viewed, role=Role.VIEWER)
    subscription_create(store=mine, url="http://127.0.0.1:9/mine", event_types=[], actor=None)
    subscription_create(store=theirs, url="http://127.0.0.1:9/theirs", event_types=[], actor=None)
    subscription_create(store=viewed, url="http://127.0.0.1:9/viewed", event_types=[], actor=None)
    client.force_login(manager)

    page = client.get("/admin/events/webhooksubscription/")

    assert page.status_code == 200
    assert "/mine" in page.text and "/theirs" not in page.text and "/viewed" not in page.text


def test_a_manager_adds_a_webhook_and_is_shown_its_secret(webhook_settings, client, receiver):
    store = StoreFactory()
    client.force_login(member("manager", store, Role.MANAGER))

    response = client.post(
        "/admin/events/webhooksubscription/add/",
        {"store": store.pk, "url": receiver.url, "event_types": ["stock.out"], "is_active": "on"},
        follow=True,
    )

    subscription = WebhookSubscription.objects.get()
    assert response.status_code == 200
    assert subscription.secret in response.text
    assert subscription.event_types == ["stock.out"]


def test_the_admin_refuses_a_receiver_on_a_private_address(client):
    """As the API does, unless WEBHOOK_ALLOW_PRIVATE_NETWORKS (not set here)."""
    store = StoreFactory()
    client.force_login(member("manager", store, Role.MANAGER))

    response = client.post(
        "/admin/events/webhooksubscription/add/",
        {"store": store.pk, "url": "http://10.1.2.3/hooks", "event_types": [], "is_active": "on"},
    )

    assert response.status_code == 200  # the form again, with its error
    assert "10.1.2.3 is a private address" in response.text
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("role", [Role.CLERK, Role.VIEWER])
def test_only_managers_may_add_a_webhook_in_the_admin(webhook_settings, client, role):
    store = StoreFactory()
    client.force_login(member("member", store, role))

    listed = client.get("/admin/events/webhooksubscription/")
    added = client.post(
        "/admin/events/webhooksubscription/add/",
        {"store": store.pk, "url": "http://127.0.0.1:9/hook", "event_types": [], "is_active": "on"},
    )

    assert listed.status_code == added.status_code == 403
    assert not WebhookSubscription.objects.exists()


def test_redeliver_sends_the_chosen_deliveries_again(
    webhook_settings, client, receiver, stock_changes, django_capture_on_commit_callbacks
):
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = []
    store = StoreFactory()
    subscription_create(store=store, url=receiver.url, event_types=[], actor=None)
    receiver.status = 500
    stock_changes.receive(store)
    delivery = WebhookDelivery.objects.get()
    receiver.status = 200
    client.force_login(member("manager", store, Role.MANAGER))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/events/webhookdelivery/",
            {"action": "redeliver_selected", "_selected_action": [delivery.pk]},
        )

    delivery.refresh_from_db()
    assert response.status_code == 302
    assert (delivery.status, len(receiver.received)) == (DeliveryStatus.SUCCEEDED, 2)
