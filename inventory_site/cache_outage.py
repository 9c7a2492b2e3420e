"""One log line per cache outage, not one per request."""

import logging

from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)


class OutageLog:
    """Remembers, per process, whether the cache was failing, and logs only the changes."""

    def __init__(self, logger: logging.Logger, what: str):
        self.logger, self.what, self.failing = logger, what, False

    def failed(self, error: Exception, consequence: str) -> None:
        if not self.failing:
            self.failing = True
            self.logger.error(
                "%s: the cache is unreachable (%r); %s", self.what, error, consequence
            )

    def succeeded(self) -> bool:
        """Record a success; True when it ends an outage."""
        if self.failing:
            self.failing = False
            self.logger.warning("%s: the cache answers again", self.what)
            return True
        return False
