"""When a process sends the audit relay message (``audit.services._RelaySchedule``): at
most one per interval, the first commit of an interval at once, and one more at the end
of an interval in which commits were made, so the last events of a burst are relayed
without waiting for beat. (tests in audit/tests/test_relay_worker.py run it with a real
worker.)"""

import threading
import time

from audit.services import _RelaySchedule
from tests.processes import wait_until

INTERVAL = 0.3


class Sends:
    """Records when ``send`` was called."""

    def __init__(self):
        self.started = time.monotonic()
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.times.append(time.monotonic() - self.started)

    def __len__(self):
        return len(self.times)


def test_commits_inside_the_interval_are_sent_once_when_it_ends():
    schedule, sends = _RelaySchedule(), Sends()

    for _ in range(5):
        schedule.committed(INTERVAL, sends)

    assert len(sends) == 1  # the first commit, at once
    assert wait_until(lambda: len(sends) == 2, timeout=5, interval=0.01)
    time.sleep(2 * INTERVAL)
    assert len(sends) == 2, sends.times  # one trailing send for the four, no more
    assert INTERVAL * 0.9 <= sends.times[1] < INTERVAL + 0.5, sends.times


def test_a_lone_commit_sends_once_and_schedules_nothing():
    schedule, sends = _RelaySchedule(), Sends()

    schedule.committed(INTERVAL, sends)
    time.sleep(2 * INTERVAL)

    assert len(sends) == 1
    assert schedule.trailing is None


def test_a_commit_after_the_trailing_send_starts_a_new_interval():
    schedule, sends = _RelaySchedule(), Sends()
    schedule.committed(INTERVAL, sends)
    schedule.committed(INTERVAL, sends)
    assert wait_until(lambda: len(sends) == 2, timeout=5, interval=0.01)

    schedule.committed(INTERVAL, sends)  # inside the interval the trailing send began

    assert len(sends) == 2
    assert wait_until(lambda: len(sends) == 3, timeout=5, interval=0.01)
    assert sends.times[2] - sends.times[1] >= INTERVAL * 0.9, sends.times


def test_without_an_interval_every_commit_sends_at_once():
    """Embedded mode: the relay runs in-process, right after each commit."""
    schedule, sends = _RelaySchedule(), Sends()

    for _ in range(3):
        schedule.committed(0.0, sends)

    assert len(sends) == 3
    assert schedule.trailing is None
