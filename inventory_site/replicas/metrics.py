"""Each read replica's state at /metrics, read from the replica at each scrape.

A replica that is down must not fail the scrape or hold it long: its connection has
the replica's timeouts (settings, ``deadline``), the query goes through the circuit the
router uses (a replica this process found failing is not asked again for
``REPLICA_DOWN_SECONDS``), and the failure shows as ``inventory_replica_up 0`` with no
lag sample, which is what an alert wants to see.
"""

import logging

from django.conf import settings
from django.db import Error as DatabaseError
from prometheus_client.core import GaugeMetricFamily

from inventory_site.cache_outage import CircuitOpen

from .routing import replicas

logger = logging.getLogger(__name__)


class ReplicaCollector:
    def collect(self):
        up = GaugeMetricFamily(
            "inventory_replica_up",
            "1 when the replica answered the lag query at this scrape, 0 when it did not "
            "or was skipped as down.",
            labels=["replica"],
        )
        lag = GaugeMetricFamily(
            "inventory_replica_lag_seconds",
            "Seconds the replica is behind the primary (0 when it streams and has "
            "replayed all it received; growing while it is cut off from the primary); "
            "absent while the replica is down.",
            labels=["replica"],
        )
        for alias in settings.REPLICA_DATABASES:
            try:
                seconds = replicas.lag_seconds(alias)
            except CircuitOpen:
                up.add_metric([alias], 0)
                continue
            except DatabaseError as error:
                logger.warning("replica %s did not answer the lag query: %s", alias, error)
                up.add_metric([alias], 0)
                continue
            up.add_metric([alias], 1)
            lag.add_metric([alias], seconds)
        yield up
        yield lag

    def describe(self):
        return []
