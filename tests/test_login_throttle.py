"""Every login path is throttled per client address and per username (API.md: 429 with
Retry-After, "including repeated failed logins").

The paths: the admin's login form, the browsable API's (``/api/v1/auth/login/``) and the
token endpoint. An attempt past a limit is refused before its password is checked, so a
flood of wrong passwords records no more failed-login audit events than the limits let
through. The forms still render, with the error, as 429.
"""

import pytest
import yaml
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent, AuditOutboxEntry
from stores.models import Role
from tests.api import assert_error
from tests.factories import TEST_PASSWORD, MembershipFactory, StoreFactory, UserFactory
from tests.ratelimits import (
    assert_throttled,
    retry_after,
    start_in_a_fresh_window,
    usage,
    username_key,
)

ADMIN_LOGIN = "/admin/login/"
API_LOGIN = "/api/v1/auth/login/"
TOKEN = "/api/v1/auth/token/"
FORMS = {ADMIN_LOGIN: "/admin/", API_LOGIN: "/api/v1/stores/"}  # login path -> next
ADMIN_INVALID_LOGIN = (
    "Please enter the correct username and password of a store member or staff account. "
    "Note that both fields may be case-sensitive."
)
API_INVALID_LOGIN = (
    "Please enter a correct username and password. Note that both fields may be case-sensitive."
)
INVALID_LOGIN = {ADMIN_LOGIN: ADMIN_INVALID_LOGIN, API_LOGIN: API_INVALID_LOGIN}


@pytest.fixture(autouse=True)
def empty_cache():
    """No counter leaks into or out of a test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def people(db):
    """alice and bob, managers of a store (so that the admin lets them in)."""
    store = StoreFactory(code="berlin-01")
    for name in ("alice", "bob"):
        MembershipFactory(user=UserFactory(username=name), store=store, role=Role.MANAGER)


def form_login(path: str, username: str, password: str, address: str):
    """One attempt at a login form from ``address``; the response carries its client."""
    client = Client()
    response = client.post(
        path,
        {"username": username, "password": password, "next": FORMS[path]},
        REMOTE_ADDR=address,
    )
    response.client = client
    return response


def token_login(username: str, password: str, address: str):
    body = {"username": username, "password": password}
    return APIClient().post(TOKEN, body, format="json", REMOTE_ADDR=address)


def assert_logged_in(response, path: str, username: str):
    assert (response.status_code, response["Location"]) == (302, FORMS[path])
    assert response.client.session["_auth_user_id"] is not None
    assert response.wsgi_request.user.get_username() == username


def assert_refused(response, path: str):
    """The form again (200) with the wrong-credentials error, nobody logged in."""
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [INVALID_LOGIN[path]]
    assert "_auth_user_id" not in response.client.session


def assert_form_throttled(response) -> int:
    """429 with Retry-After, and the login page rendered with the error saying how long
    to wait; nobody logged in. Returns Retry-After."""
    assert response.status_code == 429
    seconds = retry_after(response)
    unit = "second" if seconds == 1 else "seconds"
    error = f"Too many login attempts. Try again in {seconds} {unit}."
    assert response.context["form"].non_field_errors() == [error]
    page = response.content.decode()
    assert error in page and 'name="password"' in page
    assert "_auth_user_id" not in response.client.session
    return seconds


def failed_login_events() -> int:
    """auth.login_failed events, relayed or still in the outbox."""
    action = {"action": "auth.login_failed"}
    return AuditEvent.objects.filter(**action).count() + (
        AuditOutboxEntry.objects.filter(**action).count()
    )


# --- per client address ---------------------------------------------------------------


@pytest.mark.parametrize("path", FORMS)
def test_a_login_form_refuses_an_address_past_its_limit_even_with_the_right_password(
    people, settings, path
):
    settings.LOGIN_RATE_PER_IP = "3/m"
    start_in_a_fresh_window("login-form-ip", "ip", "3/m", REMOTE_ADDR="10.0.0.1")

    wrong = [form_login(path, name, "guess", "10.0.0.1") for name in ("alice", "bob", "carol")]
    right_but_late = form_login(path, "alice", TEST_PASSWORD, "10.0.0.1")
    elsewhere = form_login(path, "alice", TEST_PASSWORD, "10.0.0.2")

    for response in wrong:
        assert_refused(response, path)
    seconds = assert_form_throttled(right_but_late)
    # Retry-After is the time left until the address's counting window ends.
    left = usage("login-form-ip", "ip", "3/m", REMOTE_ADDR="10.0.0.1")["time_left"]
    assert seconds - left in (0, 1)
    assert_logged_in(elsewhere, path, "alice")
    assert failed_login_events() == 3


def test_both_login_forms_count_against_one_limit_per_address(people, settings):
    settings.LOGIN_RATE_PER_IP = "3/m"
    start_in_a_fresh_window("login-form-ip", "ip", "3/m", REMOTE_ADDR="10.0.0.1")

    form_login(ADMIN_LOGIN, "alice", "guess", "10.0.0.1")
    form_login(API_LOGIN, "alice", "guess", "10.0.0.1")
    form_login(ADMIN_LOGIN, "bob", "guess", "10.0.0.1")
    refused = form_login(API_LOGIN, "bob", TEST_PASSWORD, "10.0.0.1")

    assert_form_throttled(refused)


@pytest.mark.parametrize("path", FORMS)
def test_showing_the_login_form_is_not_an_attempt(people, settings, path):
    settings.LOGIN_RATE_PER_IP = "1/m"
    start_in_a_fresh_window("login-form-ip", "ip", "1/m", REMOTE_ADDR="10.0.0.1")

    shown = [Client().get(path, REMOTE_ADDR="10.0.0.1").status_code for _ in range(3)]
    logged_in = form_login(path, "alice", TEST_PASSWORD, "10.0.0.1")

    assert shown == [200, 200, 200]
    assert_logged_in(logged_in, path, "alice")


# --- per username -------------------------------------------------------------------------


@pytest.mark.parametrize("path", FORMS)
def test_a_login_form_refuses_a_username_past_its_limit_from_any_address(people, settings, path):
    settings.LOGIN_RATE_PER_USERNAME = "3/m"
    start_in_a_fresh_window("login-username", username_key("alice"), "3/m")
    # The name is counted case-folded and stripped: these are three tries at one name.
    attempts = [("alice", "10.0.0.1"), ("Alice", "10.0.0.2"), (" ALICE ", "10.0.0.3")]

    wrong = [form_login(path, name, "guess", address) for name, address in attempts]
    right_but_late = form_login(path, "alice", TEST_PASSWORD, "10.0.0.4")
    bob_from_the_same_address = form_login(path, "bob", TEST_PASSWORD, "10.0.0.4")

    for response in wrong:
        assert_refused(response, path)
    seconds = assert_form_throttled(right_but_late)
    left = usage("login-username", username_key("alice"), "3/m")["time_left"]
    assert seconds - left in (0, 1)
    assert_logged_in(bob_from_the_same_address, path, "bob")
    assert failed_login_events() == 3


def test_the_token_endpoint_refuses_a_username_past_its_limit_from_any_address(people, settings):
    settings.LOGIN_RATE_PER_USERNAME = "3/m"
    start_in_a_fresh_window("login-username", username_key("alice"), "3/m")

    wrong = [token_login("alice", "guess", f"10.0.0.{n}") for n in (1, 2, 3)]
    right_but_late = token_login("alice", TEST_PASSWORD, "10.0.0.4")
    bob_from_the_same_address = token_login("bob", TEST_PASSWORD, "10.0.0.4")

    for response in wrong:
        assert assert_error(response, 401, "authentication_failed") == {
            "detail": "Unable to log in with provided credentials.",
            "code": "authentication_failed",
        }
        assert response["WWW-Authenticate"] == "Token"
    assert 1 <= assert_throttled(right_but_late) <= 60
    assert bob_from_the_same_address.status_code == 200
    assert failed_login_events() == 3


def test_every_login_path_counts_against_one_limit_per_username(people, settings):
    settings.LOGIN_RATE_PER_USERNAME = "3/m"
    start_in_a_fresh_window("login-username", username_key("alice"), "3/m")

    assert_refused(form_login(ADMIN_LOGIN, "alice", "guess", "10.0.0.1"), ADMIN_LOGIN)
    assert_refused(form_login(API_LOGIN, "alice", "guess", "10.0.0.2"), API_LOGIN)
    assert_error(token_login("alice", "guess", "10.0.0.3"), 401, "authentication_failed")
    by_token = token_login("alice", TEST_PASSWORD, "10.0.0.4")
    by_form = form_login(ADMIN_LOGIN, "alice", TEST_PASSWORD, "10.0.0.5")

    assert_throttled(by_token)
    assert_form_throttled(by_form)


# --- a flood --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*FORMS, TOKEN])
def test_sixty_wrong_passwords_then_the_right_one_is_refused_and_only_ten_are_recorded(
    people, settings, path
):
    """The defaults: 10 attempts a minute per address at the forms and at the token
    endpoint. Attempts past the limit never reach authentication: no password is checked
    and no audit event is written for them."""
    assert (settings.LOGIN_RATE_PER_IP, settings.API_RATE_TOKEN_PER_IP) == ("10/m", "10/m")
    group = "auth-token" if path == TOKEN else "login-form-ip"
    start_in_a_fresh_window(group, "ip", "10/m", margin=20, REMOTE_ADDR="10.0.0.1")

    def attempt(password):
        if path == TOKEN:
            return token_login("alice", password, "10.0.0.1")
        return form_login(path, "alice", password, "10.0.0.1")

    first_ten = [attempt("guess").status_code for _ in range(10)]
    recorded = failed_login_events()
    fifty_more = [attempt("guess").status_code for _ in range(50)]
    right = attempt(TEST_PASSWORD)

    assert first_ten == [401 if path == TOKEN else 200] * 10
    assert fifty_more == [429] * 50
    if path == TOKEN:
        assert_throttled(right)
    else:
        assert_form_throttled(right)
    assert recorded == failed_login_events() == 10


# --- when the cache cannot count ---------------------------------------------------------------


@pytest.mark.parametrize("path", FORMS)
def test_with_the_cache_down_a_login_form_lets_people_in(people, settings, dead_cache, path):
    assert settings.RATELIMIT_FAIL_OPEN is True

    assert_logged_in(form_login(path, "alice", TEST_PASSWORD, "10.0.0.1"), path, "alice")


@pytest.mark.parametrize("path", FORMS)
def test_with_the_cache_down_and_fail_open_off_a_login_form_refuses(
    people, settings, dead_cache, path
):
    settings.RATELIMIT_FAIL_OPEN = False

    response = form_login(path, "alice", TEST_PASSWORD, "10.0.0.1")

    assert assert_form_throttled(response) == 1
    assert failed_login_events() == 0


# --- the schema -------------------------------------------------------------------------------


def test_the_schema_documents_the_token_endpoints_answers(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)

    token = schema["paths"][TOKEN]["post"]
    assert set(token["responses"]) == {"200", "400", "401", "413", "415", "429"}
    assert token["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
