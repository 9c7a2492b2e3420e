"""When a failed delivery is tried again: exponential backoff from
``WEBHOOK_RETRY_SCHEDULE``, with jitter so that a receiver coming back is not hit by
every retry in the same second."""

import random
from datetime import datetime, timedelta

from django.conf import settings


def next_attempt_at(failed_attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``failed_attempts`` failures in a row (1 after the first),
    or None: the schedule is used up, give up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if failed_attempts > len(schedule):
        return None
    delay = schedule[failed_attempts - 1]
    jitter = settings.WEBHOOK_RETRY_JITTER
    delay *= 1 + random.uniform(-jitter, jitter)  # noqa: S311 - spreading load, not secrecy
    return now + timedelta(seconds=max(delay, 0))
