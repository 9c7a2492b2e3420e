"""Rate limits of the API (API.md: 429 with Retry-After), counted by django-ratelimit in
the configured cache: local memory embedded, the real Redis in services mode. The login
paths' limits (per address and per username) are in test_login_throttle.py.
"""

import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory

from inventory_site.api.ratelimits import client_ip
from tests.api import api_client, assert_error
from tests.factories import TEST_PASSWORD, UserFactory
from tests.processes import ROOT, free_port, project_env, run, stop, wait_until
from tests.ratelimits import assert_throttled, start_in_a_fresh_window, usage

STORES = "/api/v1/stores/"
TOKEN = "/api/v1/auth/token/"
WRONG_PASSWORD = {
    "detail": "Unable to log in with provided credentials.",
    "code": "authentication_failed",
}


@pytest.fixture(autouse=True)
def empty_cache():
    """No counter leaks into or out of a test."""
    cache.clear()
    yield
    cache.clear()


def token_request(client, password, remote_addr, **extra):
    body = {"username": "alice", "password": password}
    return client.post(TOKEN, body, format="json", REMOTE_ADDR=remote_addr, **extra)


# --- per user ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_request_past_the_per_user_rate_gets_429_with_retry_after(settings):
    settings.API_RATE_PER_USER = "3/m"
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    start_in_a_fresh_window("api-user", "user", "3/m", user=alice)
    client = api_client(alice)

    allowed = [client.get(STORES).status_code for _ in range(3)]
    refused = client.get(STORES)

    assert allowed == [200, 200, 200]
    seconds = assert_throttled(refused)
    assert 1 <= seconds <= 60
    # Retry-After is the time left until the user's counting window ends.
    assert seconds - usage("api-user", "user", "3/m", user=alice)["time_left"] in (0, 1)
    assert api_client(bob).get(STORES).status_code == 200


@pytest.mark.django_db
def test_the_per_user_rate_holds_whatever_address_the_user_comes_from(settings):
    settings.API_RATE_PER_USER = "3/m"
    alice = UserFactory(username="alice")
    start_in_a_fresh_window("api-user", "user", "3/m", user=alice)
    client = api_client(alice)

    statuses = [
        client.get(STORES, REMOTE_ADDR=address).status_code
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    ]
    refused = client.get(STORES, REMOTE_ADDR="10.0.0.4")

    assert statuses == [200, 200, 200]
    assert_throttled(refused)


# --- per IP -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_request_past_the_per_ip_rate_gets_429_whoever_sends_it(settings):
    settings.API_RATE_PER_IP = "3/m"
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    start_in_a_fresh_window("api-ip", "ip", "3/m", REMOTE_ADDR="10.0.0.1")

    allowed = [
        api_client(user).get(STORES, REMOTE_ADDR="10.0.0.1").status_code
        for user in (alice, bob, alice)
    ]
    refused = api_client(bob).get(STORES, REMOTE_ADDR="10.0.0.1")
    elsewhere = api_client(bob).get(STORES, REMOTE_ADDR="10.0.0.2")

    assert allowed == [200, 200, 200]
    assert 1 <= assert_throttled(refused) <= 60
    assert elsewhere.status_code == 200


@pytest.mark.django_db
def test_anonymous_requests_count_against_the_per_ip_rate(settings):
    settings.API_RATE_PER_IP = "3/m"
    start_in_a_fresh_window("api-ip", "ip", "3/m", REMOTE_ADDR="10.0.0.1")
    client = api_client()

    unauthenticated = [client.get(STORES, REMOTE_ADDR="10.0.0.1") for _ in range(3)]
    refused = client.get(STORES, REMOTE_ADDR="10.0.0.1")

    for response in unauthenticated:
        assert_error(response, 401, "not_authenticated")
    assert_throttled(refused)


@pytest.mark.django_db
def test_requests_with_a_bad_token_count_against_the_per_ip_rate(settings):
    """Counted before authentication fails: guessing tokens is slowed down too."""
    settings.API_RATE_PER_IP = "3/m"
    start_in_a_fresh_window("api-ip", "ip", "3/m", REMOTE_ADDR="10.0.0.1")
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    statuses = [client.get(STORES, REMOTE_ADDR="10.0.0.1").status_code for _ in range(4)]

    assert statuses == [401, 401, 401, 429]


# --- the token endpoint -----------------------------------------------------------------


@pytest.mark.django_db
def test_token_attempts_are_limited_per_ip_and_wrong_passwords_count(settings):
    settings.API_RATE_TOKEN_PER_IP = "3/m"
    alice = UserFactory(username="alice")
    start_in_a_fresh_window("auth-token", "ip", "3/m", REMOTE_ADDR="10.0.0.1")
    client = api_client()

    wrong = [token_request(client, "guess", "10.0.0.1") for _ in range(3)]
    right_but_late = token_request(client, TEST_PASSWORD, "10.0.0.1")
    elsewhere = token_request(client, TEST_PASSWORD, "10.0.0.2")

    assert [assert_error(r, 401, "authentication_failed") for r in wrong] == [WRONG_PASSWORD] * 3
    assert [r["WWW-Authenticate"] for r in wrong] == ["Token"] * 3
    assert 1 <= assert_throttled(right_but_late) <= 60
    assert elsewhere.status_code == 200
    assert elsewhere.json() == {"token": alice.auth_token.key}


@pytest.mark.django_db
def test_successful_token_requests_count_too(settings):
    settings.API_RATE_TOKEN_PER_IP = "2/m"
    UserFactory(username="alice")
    start_in_a_fresh_window("auth-token", "ip", "2/m", REMOTE_ADDR="10.0.0.1")
    client = api_client()

    statuses = [token_request(client, TEST_PASSWORD, "10.0.0.1").status_code for _ in range(2)]
    refused = token_request(client, TEST_PASSWORD, "10.0.0.1")

    assert statuses == [200, 200]
    assert_throttled(refused)


# --- which address is the client's --------------------------------------------------------


@pytest.mark.django_db
def test_without_trusted_proxies_a_forged_x_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.API_RATE_PER_IP = "3/m"
    alice = UserFactory(username="alice")
    start_in_a_fresh_window("api-ip", "ip", "3/m", REMOTE_ADDR="10.0.0.1")
    client = api_client(alice)

    statuses = [
        client.get(STORES, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forged).status_code
        for forged in ("203.0.113.1", "203.0.113.2", "203.0.113.3")
    ]
    refused = client.get(STORES, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.4")

    assert statuses == [200, 200, 200]
    assert_throttled(refused)


@pytest.mark.django_db
def test_behind_one_trusted_proxy_the_last_forwarded_entry_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.API_RATE_PER_IP = "3/m"
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    start_in_a_fresh_window("api-ip", "ip", "3/m", REMOTE_ADDR="203.0.113.7")
    proxy = {"REMOTE_ADDR": "10.0.0.100"}
    # Whatever the client puts in front, the proxy appends the address it saw last.
    alice_sends = ["203.0.113.7", "198.51.100.1, 203.0.113.7", "192.0.2.5, 203.0.113.7"]

    statuses = [
        api_client(alice).get(STORES, HTTP_X_FORWARDED_FOR=forwarded, **proxy).status_code
        for forwarded in alice_sends
    ]
    refused = api_client(alice).get(STORES, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    bob_behind_the_same_proxy = api_client(bob).get(
        STORES, HTTP_X_FORWARDED_FOR="198.51.100.9", **proxy
    )

    assert statuses == [200, 200, 200]
    assert_throttled(refused)
    assert bob_behind_the_same_proxy.status_code == 200


# --- one counter for every app-server worker ----------------------------------------------


@pytest.mark.django_db
def test_with_the_cache_down_requests_go_through_unlimited(settings, dead_cache):
    assert settings.RATELIMIT_FAIL_OPEN is True
    client = api_client(UserFactory(username="alice"))
    client.raise_request_exception = False

    response = client.get(STORES)

    assert response.status_code == 200


@pytest.mark.django_db
def test_with_the_cache_down_and_fail_open_off_requests_are_refused(settings, dead_cache):
    settings.RATELIMIT_FAIL_OPEN = False
    client = api_client(UserFactory(username="alice"))

    response = client.get(STORES)

    assert assert_throttled(response) == 1


def http_post_json(url: str, body: dict) -> tuple[int, dict, dict]:
    """POST over a new connection; (status, headers, JSON body), errors included."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.load(error)


def token_requests_served(log: str) -> list[tuple[str, str]]:
    """(worker pid, status) of each token request in the access log, in order."""
    return re.findall(r"^access <(\d+)> POST /api/v1/auth/token/ HTTP/1.1 (\d{3})$", log, re.M)


@pytest.fixture
def web_server(tmp_path):
    """``bin/run web`` on the test database, as a context of (base url, log reader)."""
    processes = []

    def start(env: dict[str, str], *args: str):
        log = open(tmp_path / "web.log", "w+")
        process = subprocess.Popen(
            ["bin/run", "web", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append((process, log))

        def read_log() -> str:
            log.seek(0)
            return log.read()

        pinged = wait_until(lambda: run(["bin/run", "ping-web"], env).returncode == 0, timeout=60)
        assert pinged, read_log()
        return f"http://127.0.0.1:{env['PORT']}", read_log

    yield start
    for process, log in processes:
        stop(process)
        log.close()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_share_the_token_counter_in_redis(web_server, tmp_path):
    # Hashed with the production hasher: the web process does not use the tests' MD5.
    alice = UserFactory(username="alice")
    hasher = PBKDF2PasswordHasher()
    alice.password = hasher.encode(TEST_PASSWORD, hasher.salt())
    alice.save(update_fields=["password"])
    (tmp_path / "static").mkdir()
    database = connection.settings_dict
    env = project_env(
        DATABASE_URL=(
            f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        REDIS_URL=django_settings.REDIS_URL,
        DEBUG="false",
        SECRET_KEY="ratelimit-test-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        STATIC_ROOT=str(tmp_path / "static"),
        PORT=str(free_port()),
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        API_RATE_TOKEN_PER_IP="3/h",
        LOG_FORMAT="text",  # the access line in gunicorn's format, as --access-logformat says
    )
    # Each worker exits after one request, so every request is served by a process that
    # never saw the earlier ones: only a counter outside the workers can refuse the 4th.
    base, read_log = web_server(
        env, "--max-requests", "1", "--access-logformat", "access %(p)s %(r)s %(s)s"
    )
    start_in_a_fresh_window("auth-token", "ip", "3/h", margin=60, REMOTE_ADDR="127.0.0.1")
    url = f"{base}{TOKEN}"

    answers = [
        http_post_json(url, {"username": "alice", "password": password})
        for password in (TEST_PASSWORD, "guess", "guess", TEST_PASSWORD)
    ]

    assert [status for status, _, _ in answers] == [200, 401, 401, 429]
    assert answers[0][2] == {"token": alice.auth_token.key}
    status, headers, body = answers[3]
    assert body["code"] == "throttled"
    assert 1 <= int(headers["Retry-After"]) <= 3600
    # gunicorn writes an access line once its answer is sent: wait for the fourth.
    wait_until(lambda: len(token_requests_served(read_log())) == 4, timeout=10, interval=0.2)
    served = token_requests_served(read_log())
    assert [status for _, status in served] == ["200", "401", "401", "429"]
    assert len({pid for pid, _ in served}) == 4, served
    # The count is in Redis, where this test process reads it too.
    assert usage("auth-token", "ip", "3/h", REMOTE_ADDR="127.0.0.1")["count"] == 4


@pytest.mark.parametrize(
    "forwarded, client",
    [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7:443", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("not-an-address", "10.0.0.1"),
        ("", "10.0.0.1"),
    ],
)
def test_the_forwarded_client_address_is_read_without_a_port(settings, forwarded, client):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get(
        "/api/v1/stores/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded
    )

    assert client_ip(request) == client
