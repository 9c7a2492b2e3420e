"""Each read replica's state at /metrics, read from the replica at each scrape.

A replica that is down must not fail the scrape or hold it long: its connection has
``REPLICA_CONNECT_TIMEOUT`` (settings), and the failure shows as
``inventory_replica_up 0`` with no lag sample, which is what an alert wants to see.
"""

import logging

from django.conf import settings
from django.db import Error as DatabaseError
from prometheus_client.core import GaugeMetricFamily

from .status import replica_lag_seconds

logger = logging.getLogger(__name__)


class ReplicaCollector:
    def collect(self):
        up = GaugeMetricFamily(
            "inventory_replica_up",
            "1 when the replica answered the lag query at this scrape, 0 when it did not.",
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
                seconds = replica_lag_seconds(alias)
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
