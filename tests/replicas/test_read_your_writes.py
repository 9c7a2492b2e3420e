"""Read-your-writes across requests, on a real streaming replica whose replay the tests
pause (README, "Read replicas"): a client that sends back its X-Consistency-Token never
reads data older than its write; one that sends none may, and is told so."""

import time

import pytest

from stock.models import BulkJob, BulkMode
from stock.services import bulk_job_submit
from stores.services import membership_revoke
from tests.factories import TEST_PASSWORD
from tests.processes import wait_until

from .replica import wait

pytestmark = pytest.mark.postgresql("the replica is a PostgreSQL standby")

MOVEMENTS = "/api/v1/stores/berlin-01/movements/"
LEVELS = "/api/v1/stores/berlin-01/stock/"
RECEIVE = "/api/v1/stores/berlin-01/stock/HOODIE/receive/"

# How long a replica read with REPLICA_MAX_LAG_SECONDS=1 may wait to be within its limit.
# The lag is the age of the last commit replayed while WAL is still to replay, so while
# another test worker runs one long transaction (a 100,000-row import, 40 s on these
# cores), the replica reads as that far behind until it commits.
BACK_WITHIN_LIMIT = 60


def back_within_limit(web) -> bool:
    """Whether ``web`` reads the replica again within ``BACK_WITHIN_LIMIT``, asked twice a
    second (a busy wait would load the cores the replay needs)."""
    return wait_until(
        lambda: web.get(MOVEMENTS).served_by == "replica", timeout=BACK_WITHIN_LIMIT, interval=0.5
    )


def on_hand(answer, sku="HOODIE") -> int:
    (level,) = [level for level in answer.body["results"] if level["sku"] == sku]
    return level["on_hand"]


def test_a_read_with_the_token_of_a_write_sees_it_one_without_may_be_stale(replica, start_web):
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="3600")
    before = web.get(MOVEMENTS)
    assert (before.status, before.served_by) == (200, "replica")
    newest_before = before.body["results"][0]["id"]

    replica.pause()
    written = web.post(RECEIVE, {"quantity": 5})
    assert (written.status, written.body["on_hand"]) == (200, 25)
    assert written.token and written.served_by == "primary"
    assert not replica.replayed(written.token)

    # (a) With the token: the replica has not replayed it, so the primary answers.
    fresh = web.get(MOVEMENTS, headers={"X-Consistency-Token": written.token})
    assert (fresh.status, fresh.served_by) == (200, "primary")
    assert fresh.body["results"][0]["id"] == written.body["movement_id"]
    fresh_levels = web.get(LEVELS, headers={"X-Consistency-Token": written.token})
    assert (fresh_levels.served_by, on_hand(fresh_levels)) == ("primary", 25)

    # (b) Without it: the paused replica answers, from before the write, and says so.
    stale = web.get(MOVEMENTS)
    assert (stale.status, stale.served_by) == (200, "replica")
    assert stale.body["results"][0]["id"] == newest_before
    stale_levels = web.get(LEVELS)
    assert (stale_levels.served_by, on_hand(stale_levels)) == ("replica", 20)

    # Once the replica has replayed the write, it serves the token's reads too.
    replica.resume()
    replica.wait_for_replay(written.token)
    caught_up = web.get(MOVEMENTS, headers={"X-Consistency-Token": written.token})
    assert (caught_up.status, caught_up.served_by) == (200, "replica")
    assert caught_up.body["results"][0]["id"] == written.body["movement_id"]


def test_a_token_that_is_no_wal_position_is_answered_by_the_primary(replica, start_web):
    """Never a stale answer for a garbled token, and never an error either: the header
    only asks for freshness, which the primary always has."""
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="3600")
    replica.pause()
    written = web.post(RECEIVE, {"quantity": 1})
    for garbled in ("yesterday", "0/", "1/2/3", "G/0", "123456789/0", "0/" + "F" * 40):
        answer = web.get(MOVEMENTS, headers={"X-Consistency-Token": garbled})
        assert (answer.status, answer.served_by) == (200, "primary"), garbled
        assert answer.body["results"][0]["id"] == written.body["movement_id"]
    # A well-formed token the replica has long replayed: the replica answers.
    assert web.get(MOVEMENTS, headers={"X-Consistency-Token": "0/1"}).served_by == "replica"


def test_a_browser_session_keeps_its_token(shop, replica, start_web, settings):
    """The admin's pages carry no header: the session keeps the last write's position."""
    # The web process checks passwords with the project's hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    shop.staff.set_password(TEST_PASSWORD)
    shop.staff.save(update_fields=["password"])
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="3600")
    browser = type(web)(web.port, web.token)
    changelist = "/admin/stock/movement/"
    assert browser.log_in_to_the_admin("staff").status == 302  # before the pause
    replica.wait_for_replay()
    first = browser.get(changelist, token=False)
    assert (first.status, first.served_by) == (200, "replica")

    replica.pause()
    # Logging in again writes (the session, last_login): its position goes to the session.
    login = browser.log_in_to_the_admin("staff")
    assert login.status == 302 and login.token
    behind = browser.get(changelist, token=False)
    assert (behind.status, behind.served_by) == (200, "primary")
    # A client without that session is served by the replica meanwhile.
    assert web.get(MOVEMENTS).served_by == "replica"

    replica.resume()
    replica.wait_for_replay(login.token)
    assert browser.get(changelist, token=False).served_by == "replica"


def test_a_replica_lagging_beyond_the_limit_is_skipped(replica, start_web):
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="1")
    assert back_within_limit(web)
    replica.pause()
    written = web.post(RECEIVE, {"quantity": 2})
    assert written.status == 200
    # Its lag is the age of the last transaction it replayed, once it has more to replay;
    # the process asks again at most every second.
    assert wait(lambda: web.get(MOVEMENTS).served_by == "primary", timeout=10)
    answer = web.get(MOVEMENTS)
    assert (answer.status, answer.served_by) == (200, "primary")
    assert answer.body["results"][0]["id"] == written.body["movement_id"]

    replica.resume()
    replica.wait_for_replay(written.token)
    assert back_within_limit(web)


def test_a_replica_cut_off_from_the_primary_lags_more_each_second_and_is_skipped(
    replica, start_web
):
    """Without its WAL receiver a replica replays what it got and then has nothing left
    to replay: it must not pass for current (lag 0), but age until it streams again."""
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="1")
    assert back_within_limit(web)
    stream_again = replica.stop_streaming()
    try:
        written = web.post(RECEIVE, {"quantity": 2})
        assert written.status == 200 and not replica.replayed(written.token)
        # It has replayed all it received: the state that read as "no lag".
        caught_up = "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
        assert wait(lambda: replica.sql(caught_up)[0])
        first = replica.lag()
        time.sleep(1)
        assert replica.lag() >= first + 0.99
        # Past REPLICA_MAX_LAG_SECONDS the router stops reading it (asked every second).
        assert wait(lambda: web.get(MOVEMENTS).served_by == "primary", timeout=10)
        answer = web.get(MOVEMENTS)
        assert (answer.status, answer.served_by) == (200, "primary")
        assert answer.body["results"][0]["id"] == written.body["movement_id"]
    finally:
        stream_again()
    replica.wait_for_replay(written.token)
    assert back_within_limit(web)


def test_a_finished_bulk_jobs_status_carries_a_token_that_covers_the_workers_changes(
    shop, replica, start_web, settings
):
    """A worker commits a bulk job's changes, in no request of the client's: the job's
    status, once finished, gives the token that a client polling until ``done`` sends
    with its next reads."""
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="3600")
    assert web.get(LEVELS).served_by == "replica"
    queued = BulkJob.objects.create(
        store=shop.berlin, created_by=shop.manager, mode=BulkMode.ADJUST, items=[], total=0
    )
    waiting = web.get(f"/api/v1/jobs/{queued.pk}/")
    assert (waiting.status, waiting.body["status"], waiting.token) == (200, "queued", None)

    replica.pause()
    # The worker's part, in this process: the job stored and applied (eager, as a worker
    # runs it), committed on the primary.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    job = bulk_job_submit(
        store=shop.berlin,
        mode=BulkMode.ADJUST,
        reason="found",
        items=[{"sku": "CAP", "delta": 2}],
        actor=shop.manager,
    )
    done = web.get(f"/api/v1/jobs/{job.pk}/")
    assert (done.status, done.body["status"], done.served_by) == (200, "done", "primary")
    assert done.token and not replica.replayed(done.token)

    fresh = web.get(LEVELS, headers={"X-Consistency-Token": done.token})
    assert (fresh.status, fresh.served_by, on_hand(fresh, "CAP")) == (200, "primary", 22)
    stale = web.get(LEVELS)
    assert (stale.status, stale.served_by, on_hand(stale, "CAP")) == (200, "replica", 20)

    replica.resume()
    replica.wait_for_replay(done.token)
    caught_up = web.get(LEVELS, headers={"X-Consistency-Token": done.token})
    assert (caught_up.served_by, on_hand(caught_up, "CAP")) == ("replica", 22)


def test_a_revoked_membership_scopes_the_lists_a_replica_serves_at_once(shop, replica, start_web):
    """The store list and a product's availability read the user's memberships on the
    primary, then their rows where a replica may: a store whose membership was revoked a
    moment ago is gone from both, though the paused replica still has the membership."""
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="3600")
    stores = web.get("/api/v1/stores/")
    assert [store["code"] for store in stores.body["results"]] == ["berlin-01", "hamburg-01"]

    replica.pause()
    membership_revoke(store=shop.hamburg, user=shop.manager, actor=shop.staff)

    listed = web.get("/api/v1/stores/")
    assert (listed.status, listed.served_by) == (200, "replica")
    assert [store["code"] for store in listed.body["results"]] == ["berlin-01"]
    availability = web.get("/api/v1/products/HOODIE/availability/")
    assert (availability.status, availability.served_by) == (200, "replica")
    assert [level["store"] for level in availability.body["stores"]] == ["berlin-01"]
    assert availability.body["total_available"] == 20
