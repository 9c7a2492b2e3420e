"""A new password revokes the user's API token, on every path that changes a password:
the old token answers 401 and the revocation is audited as the token's creation is. A
save that changes no password (a login, a hash upgrade, a new e-mail) keeps it."""

import io

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import MD5PasswordHasher, PBKDF2PasswordHasher, make_password
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from audit.models import AuditEvent, AuditOutboxEntry
from tests.api import api_client, assert_error
from tests.factories import TEST_PASSWORD, UserFactory

NEW_PASSWORD = "a-new-and-long-passphrase-7"
STORES = "/api/v1/stores/"


class OnePassPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The preferred hasher of a test that upgrades hashes, at the speed of a test."""

    iterations = 1


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def token(alice) -> str:
    """Alice's API token, as POST /api/v1/auth/token/ hands it out."""
    response = api_client().post(
        "/api/v1/auth/token/", {"username": "alice", "password": TEST_PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def by_token(key: str):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def revocations() -> list[tuple]:
    fields = ("action", "object_id", "object_repr", "after")
    return [
        *AuditEvent.objects.filter(action="token.revoke").values_list(*fields),
        *AuditOutboxEntry.objects.filter(action="token.revoke").values_list(*fields),
    ]


def assert_revoked(user, key: str):
    assert not Token.objects.filter(user=user).exists()
    assert_error(by_token(key).get(STORES), 401)
    assert revocations() == [
        ("token.revoke", str(user.pk), f"API token of {user.username}", {"why": "password changed"})
    ]


def assert_kept(user, key: str):
    assert Token.objects.get(user=user).key == key
    assert by_token(key).get(STORES).status_code == 200
    assert revocations() == []


def test_the_token_works_until_the_password_changes(alice, token):
    assert by_token(token).get(STORES).status_code == 200

    alice.set_password(NEW_PASSWORD)
    alice.save()

    assert_revoked(alice, token)
    response = api_client().post(
        "/api/v1/auth/token/", {"username": "alice", "password": NEW_PASSWORD}, format="json"
    )
    assert response.json()["token"] != token
    assert by_token(response.json()["token"]).get(STORES).status_code == 200


def test_changepassword_revokes_the_token(alice, token, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)

    call_command("changepassword", "alice", stdout=io.StringIO())

    assert authenticate(username="alice", password=NEW_PASSWORD) == alice
    assert_revoked(alice, token)


def test_the_admins_password_form_revokes_the_token(alice, token):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(admin)

    response = browser.post(
        f"/admin/accounts/user/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content[:500]
    assert_revoked(alice, token)


def test_an_unusable_password_revokes_the_token(alice, token):
    alice.set_unusable_password()
    alice.save()

    assert_revoked(alice, token)


def test_a_seed_demo_rerun_revokes_the_demo_logins_tokens(db):
    call_command("seed_demo", stdout=io.StringIO())
    clerk = Token.objects.create(user=UserFactory._meta.model.objects.get(username="clerk"))

    call_command("seed_demo", stdout=io.StringIO())

    assert not Token.objects.filter(pk=clerk.pk).exists()
    assert_error(by_token(clerk.key).get(STORES), 401)


def test_saves_that_change_no_password_keep_the_token(alice, token):
    alice.email = "alice@example.com"
    alice.save()
    alice.set_password(NEW_PASSWORD)
    alice.save(update_fields=["email"])  # the new password is not what is saved
    assert Client().login(username="alice", password=TEST_PASSWORD)  # saves last_login

    assert_kept(alice, token)


def test_a_hash_upgrade_at_login_is_no_password_change(alice, token, settings):
    alice.password = make_password(TEST_PASSWORD, hasher=MD5PasswordHasher())
    alice.save(update_fields=["password"])
    settings.PASSWORD_HASHERS = [
        f"{__name__}.OnePassPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]

    assert authenticate(username="alice", password=TEST_PASSWORD) == alice

    alice.refresh_from_db()
    assert alice.password.startswith("pbkdf2_sha256$")  # upgraded
    assert_kept(alice, token)


def test_a_new_user_costs_no_revocation(db, django_assert_num_queries):
    user = UserFactory.build(username="bob")
    user.set_password(NEW_PASSWORD)

    with django_assert_num_queries(1):
        user.save()
