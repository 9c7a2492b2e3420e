"""/api/v1/stores/{code}/webhooks/: the store's managers subscribe, change, rotate,
delete and follow deliveries; everyone else is refused (403 for members who are not
managers, 404 for the rest); bad input is a 400 with the usual shape."""

import pytest

from events.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import StaffFactory, StoreFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def store():
    return StoreFactory(code="berlin-01")


@pytest.fixture
def manager(store):
    return member("manager", store, Role.MANAGER)


def webhooks_url(*parts) -> str:
    return "/api/v1/stores/berlin-01/webhooks/" + "".join(f"{part}/" for part in parts)


def create(client, receiver, **body):
    return client.post(webhooks_url(), {"url": receiver.url, **body}, format="json")


def test_a_manager_subscribes_and_sees_the_secret_once(webhook_settings, receiver, manager):
    client = api_client(manager)

    created = create(client, receiver, events=["stock.out", "stock.low"])
    listed = client.get(webhooks_url())
    detail = client.get(webhooks_url(created.json()["id"]))

    assert created.status_code == 201, created.content
    body = created.json()
    subscription = WebhookSubscription.objects.get()
    assert body["secret"] == subscription.secret and body["secret"].startswith("whsec_")
    assert (body["url"], body["events"], body["is_active"]) == (
        receiver.url,
        ["stock.low", "stock.out"],
        True,
    )
    assert body["created_by"] == "manager"
    assert listed.json()["count"] == 1
    assert "secret" not in listed.json()["results"][0]
    assert "secret" not in detail.json() and detail.json()["id"] == subscription.pk


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CLERK])
def test_members_who_do_not_manage_the_store_are_refused(webhook_settings, receiver, store, role):
    client = api_client(member("someone", store, role))

    assert_error(client.get(webhooks_url()), 403)
    assert_error(create(client, receiver), 403)
    assert not WebhookSubscription.objects.exists()


def test_other_stores_and_anonymous_clients_learn_nothing(webhook_settings, receiver, store):
    other_manager = member("elsewhere", StoreFactory(), Role.MANAGER)

    assert_error(api_client(other_manager).get(webhooks_url()), 404)
    assert_error(create(api_client(other_manager), receiver), 404)
    assert_error(api_client().get(webhooks_url()), 401)
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": 42}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "http://169.254.169.254/latest/"}, "url"),
        ({"url": "http://10.1.2.3/hook"}, "url"),
        ({"url": "http://localhost:8000/hook"}, "url"),
        ({"url": "https://example.com/" + "a" * 2000}, "url"),
        ({"url": "https://93.184.215.14/", "events": ["stock.sold"]}, "events"),
        ({"url": "https://93.184.215.14/", "events": "stock.out"}, "events"),
        ({"url": "https://93.184.215.14/", "is_active": "yes"}, "is_active"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(settings, manager, body, field):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    response = api_client(manager).post(webhooks_url(), body, format="json")

    assert field in assert_error(response, 400)["errors"]
    assert not WebhookSubscription.objects.exists()


def test_a_manager_changes_rotates_and_deletes_a_subscription(webhook_settings, receiver, manager):
    client = api_client(manager)
    created = create(client, receiver).json()

    patched = client.patch(
        webhooks_url(created["id"]), {"events": ["stock.out"], "is_active": False}, format="json"
    )
    empty = client.patch(webhooks_url(created["id"]), {}, format="json")
    rotated = client.post(webhooks_url(created["id"], "rotate-secret"))
    subscription = WebhookSubscription.objects.get()
    deleted = client.delete(webhooks_url(created["id"]))

    assert patched.status_code == 200
    assert (patched.json()["events"], patched.json()["is_active"]) == (["stock.out"], False)
    assert_error(empty, 400)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] == subscription.secret != created["secret"]
    assert subscription.previous_secret == created["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert deleted.status_code == 204
    assert not WebhookSubscription.objects.exists()
    assert_error(client.get(webhooks_url(created["id"])), 404)


def test_deliveries_list_their_attempts_and_one_can_be_sent_again(
    webhook_settings, receiver, store, manager, stock_changes, django_capture_on_commit_callbacks
):
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = [3600]
    client = api_client(manager)
    webhook = create(client, receiver).json()["id"]
    receiver.status = 500
    stock_changes.receive(store)
    delivery = WebhookDelivery.objects.get()

    listed = client.get(webhooks_url(webhook, "deliveries"))
    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(webhooks_url(webhook, "deliveries", delivery.pk, "redeliver"))
    elsewhere = api_client(member("other", StoreFactory(), Role.MANAGER))

    [row] = listed.json()["results"]
    assert row["webhook_id"] == f"berlin-01:{delivery.seq}"
    assert (row["status"], row["attempts"], row["last_response_code"]) == ("failed", 1, 500)
    assert row["next_attempt_at"] is not None
    assert [a["response_code"] for a in row["attempts_log"]] == [500]
    assert row["attempts_log"][0]["next_attempt_at"] == row["next_attempt_at"]
    assert again.status_code == 202
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert_error(client.post(webhooks_url(webhook, "deliveries", 10**6, "redeliver")), 404)
    assert_error(elsewhere.post(webhooks_url(webhook, "deliveries", delivery.pk, "redeliver")), 404)


def test_staff_with_stock_permissions_manage_every_stores_webhooks(
    webhook_settings, receiver, store
):
    response = create(api_client(StaffFactory()), receiver)

    assert response.status_code == 201
