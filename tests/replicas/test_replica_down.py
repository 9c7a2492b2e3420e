"""A replica that is down, stopped, or silent never costs an answer: every endpoint
answers as it does without replicas, from the primary."""

import os
import signal
import time

import pytest

from tests.factories import TEST_PASSWORD
from tests.metrics import by_label, parse
from tests.test_cache_hanging import SilentRedis as SilentServer

from .conftest import nothing_listens
from .endpoints import API_READS, PAGE_READS, sale_deciding_writes
from .replica import may_stop_the_replica, wait

pytestmark = pytest.mark.postgresql("the web process shares the test database")

MOVEMENTS = "/api/v1/stores/berlin-01/movements/"


@pytest.fixture
def staff_password(shop, settings):
    """The staff user's password, hashed as the web process checks it (not with the
    tests' fast hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    shop.staff.set_password(TEST_PASSWORD)
    shop.staff.save(update_fields=["password"])


def every_read(web, browser) -> list[tuple[str, int, str | None]]:
    answers = [(path, *_status_and_source(web.get(path))) for path in API_READS]
    answers += [(path, *_status_and_source(browser.get(path, token=False))) for path in PAGE_READS]
    return answers


def _status_and_source(answer):
    return answer.status, answer.served_by


def test_with_nothing_at_the_replica_address_everything_answers_from_the_primary(
    start_web, staff_password
):
    web = start_web(nothing_listens())
    browser = type(web)(web.port, web.token)
    assert browser.log_in_to_the_admin("staff").status == 302

    reads = every_read(web, browser)
    writes = sale_deciding_writes(web)

    assert reads == [(path, 200, "primary") for path in API_READS + PAGE_READS]
    assert [(what, answered) for what, _, answered in writes] == [
        (what, expected) for what, expected, _ in writes
    ]


def test_a_silent_replica_costs_one_connect_timeout_per_period_not_one_per_request(start_web):
    """A replica that accepts connections and never answers: each attempt waits for
    REPLICA_CONNECT_TIMEOUT (1 s, the default); after one, the process skips it for
    REPLICA_DOWN_SECONDS."""
    silent = SilentServer()
    try:
        web = start_web(
            f"postgres://postgres@127.0.0.1:{silent.port}/inventory", REPLICA_CONNECT_TIMEOUT="1"
        )
        started = time.monotonic()
        answers = [web.get(MOVEMENTS) for _ in range(10)]
        elapsed = time.monotonic() - started
        tried = silent.accepted
    finally:
        silent.close()
    assert [(answer.status, answer.served_by) for answer in answers] == [(200, "primary")] * 10
    assert tried == 1
    assert elapsed < 4, f"10 reads took {elapsed:.1f} s"


def test_a_replica_stopped_while_serving_is_skipped_and_used_again_once_back(
    replica, start_web, staff_password
):
    if not may_stop_the_replica():
        pytest.skip("stopping the replica's server needs root or the postgres user")
    web = start_web(replica.url(), REPLICA_DOWN_SECONDS="1", REPLICA_MAX_LAG_SECONDS="3600")
    browser = type(web)(web.port, web.token)
    assert browser.log_in_to_the_admin("staff").status == 302
    assert web.get(MOVEMENTS).served_by == "replica"

    start_again = replica.stop_server()
    try:
        reads = every_read(web, browser)
        writes = sale_deciding_writes(web)
    finally:
        start_again()

    assert reads == [(path, 200, "primary") for path in API_READS + PAGE_READS]
    assert [(what, answered) for what, _, answered in writes] == [
        (what, expected) for what, expected, _ in writes
    ]
    replica.wait_for_replay()
    assert wait(lambda: web.get(MOVEMENTS).served_by == "replica", timeout=15)


def test_a_replica_that_stops_answering_mid_session_costs_a_bounded_wait(replica, start_web):
    """The web process keeps its replica session (CONN_MAX_AGE) and the replica's server
    then stops answering without closing anything (its processes stopped: the kernel
    still acknowledges every packet, so no TCP timeout fires and the replica's own
    statement_timeout cannot run). The read is cut by the process's statement deadline,
    the reconnect by the connect timeout, and the primary answers; /metrics, through the
    same circuit, then does not wait for the replica at all."""
    if not may_stop_the_replica():
        pytest.skip("stopping the replica's processes needs root or the postgres user")
    statement_ms, connect_seconds = 1000, 2
    web = start_web(
        replica.url(),
        CONN_MAX_AGE="60",
        REPLICA_STATEMENT_TIMEOUT_MS=str(statement_ms),
        REPLICA_CONNECT_TIMEOUT=str(connect_seconds),
        REPLICA_DOWN_SECONDS="60",
        REPLICA_MAX_LAG_SECONDS="3600",
    )
    assert web.get(MOVEMENTS).served_by == "replica"
    stopped = replica.server_processes()
    assert len(stopped) == 2, stopped  # the postmaster and the web process's session
    replica.close()
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = web.get(MOVEMENTS)
        elapsed = time.monotonic() - started
        started = time.monotonic()
        metrics = web.get("/metrics", token=False)
        scrape_seconds = time.monotonic() - started
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)

    assert (answer.status, answer.served_by) == (200, "primary")
    # The deadline (statement timeout + 1 s) on the kept session, then one connect timeout.
    bound = statement_ms / 1000 + 1 + connect_seconds + 1
    assert elapsed < bound, f"the read took {elapsed:.1f} s"
    assert metrics.status == 200
    assert by_label(parse(metrics.body), "inventory_replica_up", "replica") == {"replica_1": 0}
    assert scrape_seconds < connect_seconds, f"the scrape took {scrape_seconds:.1f} s"
