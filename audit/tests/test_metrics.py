"""The audit relay's health at GET /metrics, read from the database at each scrape."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditOutboxEntry
from audit.services import audit_record, audit_relay_pending
from tests.app_role import as_owner

pytestmark = pytest.mark.django_db

BACKLOG = "inventory_audit_backlog_events"
WAITED = "inventory_audit_relay_lag_seconds"
LAST_LAG = "inventory_audit_last_relay_lag_seconds"


def scrape(client) -> tuple[str, dict[str, float]]:
    """The /metrics body and its audit gauges by name."""
    response = client.get("/metrics")
    assert response.status_code == 200
    body = response.content.decode()
    gauges = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name in (BACKLOG, WAITED, LAST_LAG)
    }
    return body, gauges


def record(count: int) -> list[AuditOutboxEntry]:
    for number in range(1, count + 1):
        audit_record(action="product.update", object_type="catalog.product", object_id=number)
    return list(AuditOutboxEntry.objects.order_by("pk"))


def backdate(entry: AuditOutboxEntry, ago: timedelta) -> None:
    with as_owner():  # the app may not rewrite an entry; the test travels in time
        AuditOutboxEntry.objects.filter(pk=entry.pk).update(occurred_at=timezone.now() - ago)


def test_metrics_show_zeros_when_nothing_was_recorded(client):
    body, gauges = scrape(client)

    assert gauges == {BACKLOG: 0.0, WAITED: 0.0, LAST_LAG: 0.0}
    assert f"\n{BACKLOG} 0.0\n" in body
    assert f"# TYPE {BACKLOG} gauge\n" in body


def test_metrics_show_the_backlog_and_how_long_the_oldest_entry_has_waited(client):
    oldest, newest = record(2)
    backdate(oldest, timedelta(minutes=5))
    backdate(newest, timedelta(minutes=1))

    body, gauges = scrape(client)

    assert f"\n{BACKLOG} 2.0\n" in body
    assert gauges[BACKLOG] == 2.0
    assert 300 <= gauges[WAITED] < 330
    assert gauges[LAST_LAG] == 0.0  # nothing relayed yet


def test_metrics_show_an_empty_backlog_and_the_last_relay_lag_after_relaying(client):
    oldest, newest = record(2)
    backdate(oldest, timedelta(minutes=5))
    backdate(newest, timedelta(minutes=1))
    assert audit_relay_pending() == 2

    body, gauges = scrape(client)

    assert f"\n{BACKLOG} 0.0\n" in body
    assert (gauges[BACKLOG], gauges[WAITED]) == (0.0, 0.0)
    # The last relayed event is the newest entry, relayed about a minute after its change.
    assert 60 <= gauges[LAST_LAG] < 90
    assert f"\n{LAST_LAG} " in body


def test_metrics_follow_the_outbox_between_scrapes(client):
    record(1)
    _, first = scrape(client)
    record(2)
    _, second = scrape(client)
    audit_relay_pending()
    _, third = scrape(client)

    assert [first[BACKLOG], second[BACKLOG], third[BACKLOG]] == [1.0, 3.0, 0.0]
