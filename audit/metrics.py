"""Audit relay health at /metrics, read from the database at each scrape."""

import logging

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily

from .selectors import audit_backlog, audit_last_relay_lag

logger = logging.getLogger(__name__)


class AuditRelayCollector:
    def collect(self):
        try:
            backlog, oldest_wait = audit_backlog()
            last_lag = audit_last_relay_lag()
        except DatabaseError:
            logger.warning("audit metrics unavailable: database error", exc_info=True)
            return
        yield GaugeMetricFamily(
            "inventory_audit_backlog_events",
            "Outbox entries not yet relayed into the audit log.",
            value=backlog,
        )
        yield GaugeMetricFamily(
            "inventory_audit_relay_lag_seconds",
            "How long the oldest outbox entry has waited to be relayed (0 when none waits).",
            value=oldest_wait,
        )
        yield GaugeMetricFamily(
            "inventory_audit_last_relay_lag_seconds",
            "Seconds between the last relayed event's change and its relay.",
            value=last_lag if last_lag is not None else 0.0,
        )

    def describe(self):
        return []
