"""``log.viewers_with_access`` for streams a browser opened: the session must still be
the user's login, as ``django.contrib.auth.get_user`` decides on each request."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from events.stream.log import Viewer, viewers_with_access
from stores.models import Role
from tests.factories import StoreFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def store():
    return StoreFactory(code="berlin-01")


def browser_viewer(store, user) -> Viewer:
    """A stream opened by a browser logged in as ``user``."""
    browser = Client()
    browser.force_login(user)
    return Viewer(store.pk, user.pk, token_key=None, session_key=browser.session.session_key)


def test_a_browser_logged_in_keeps_its_access(store):
    viewer = browser_viewer(store, member("clerk", store, Role.VIEWER))

    assert viewers_with_access([viewer]) == {viewer}


def test_a_password_change_ends_the_other_sessions_access(store):
    user = member("clerk", store, Role.VIEWER)
    viewer = browser_viewer(store, user)

    user.set_password("a-new-password-1")
    user.save(update_fields=["password"])

    assert viewers_with_access([viewer]) == set()


def test_a_logged_out_session_has_no_access(store):
    viewer = browser_viewer(store, member("clerk", store, Role.VIEWER))

    SessionStore(session_key=viewer.session_key).flush()

    assert viewers_with_access([viewer]) == set()


def test_an_expired_session_has_no_access(store):
    viewer = browser_viewer(store, member("clerk", store, Role.VIEWER))

    Session.objects.filter(session_key=viewer.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    assert viewers_with_access([viewer]) == set()


def test_a_session_is_no_access_for_another_user(store):
    clerk = member("clerk", store, Role.VIEWER)
    other = member("other", store, Role.VIEWER)
    viewer = browser_viewer(store, clerk)
    borrowed = Viewer(store.pk, other.pk, token_key=None, session_key=viewer.session_key)

    assert viewers_with_access([viewer, borrowed]) == {viewer}


def test_a_session_signed_under_a_previous_secret_key_keeps_its_access(settings, store):
    """As on a request: a key rotation with the old key in SECRET_KEY_FALLBACKS logs
    nobody out."""
    old_key = settings.SECRET_KEY
    viewer = browser_viewer(store, member("clerk", store, Role.VIEWER))

    settings.SECRET_KEY = "a-new-secret-key-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = [old_key]

    assert viewers_with_access([viewer]) == {viewer}
    settings.SECRET_KEY_FALLBACKS = []
    assert viewers_with_access([viewer]) == set()
