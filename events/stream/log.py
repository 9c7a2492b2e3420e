"""What a stream asks the database, each in a worker thread that closes its connection
before it returns: a stream holds no database connection while it waits, and an events
process has at most EVENTS_STREAM_DB_CONNECTIONS open at once, however many streams
connect or fill a gap together."""

import asyncio
import functools
import operator
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework.exceptions import AuthenticationFailed, Throttled

from accounts.authentication import TokenAuthentication
from inventory_site.api.ratelimits import enforce_rate_limit
from stores.access import STAFF_ROLE_PERMISSIONS, role_in_store
from stores.models import Membership

from ..channels import event_data
from ..models import StockEvent, StoreEventSequence

# Events read from the log per query, and so sent per batch while catching up.
PAGE_SIZE = 500

# Each event loop's threads for the database: EVENTS_STREAM_DB_CONNECTIONS of them, each
# closing its connection after every call.
_threads: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _executor() -> ThreadPoolExecutor:
    loop = asyncio.get_running_loop()
    if loop not in _threads:
        _threads[loop] = ThreadPoolExecutor(
            max_workers=settings.EVENTS_STREAM_DB_CONNECTIONS, thread_name_prefix="events-db"
        )
    return _threads[loop]


async def in_thread(function, *args):
    """``function(*args)`` in one of the process's EVENTS_STREAM_DB_CONNECTIONS database
    threads, which closes its connection before it takes the next call. The threads are
    the bound: a stream whose client left stops waiting at once, but its query runs on
    in its thread, which takes no other meanwhile. (asgiref's default would give each
    open stream a thread of its own for as long as it stays open.)"""

    def run():
        try:
            return function(*args)
        finally:
            connections[DEFAULT_DB_ALIAS].close()

    return await sync_to_async(run, thread_sensitive=False, executor=_executor())()


@dataclass(frozen=True)
class Viewer:
    """Who opened a stream of which store: the user, and the API token they sent or
    else the key of the browser's session (the other one None), so that the periodic
    check ends the stream when either is gone."""

    store_id: int
    user_id: int
    token_key: str | None
    session_key: str | None = None


@dataclass(frozen=True)
class Refusal:
    status: int  # 401: no or bad credentials; 404: no such store for this user; 429
    detail: str
    code: str
    retry_after: int | None = None  # seconds, for a 429


def authorize(request, code: str) -> Viewer | Refusal:
    """The viewer of store ``code`` if the request's user may view it: by the API token
    (``Authorization: Token <key>``) or else the session cookie (a browser's
    EventSource sends no header of its own). Each user may open
    EVENTS_STREAM_RATE_PER_USER streams, counted as the API's rate limits are, whatever
    the store. ``viewers_with_access`` asks the same of open streams."""
    try:
        authenticated = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as error:
        return Refusal(401, str(error.detail), "authentication_failed")
    user = authenticated[0] if authenticated else request.user
    if not user.is_authenticated:
        return Refusal(401, "Authentication credentials were not provided.", "not_authenticated")
    try:
        enforce_rate_limit(
            request,
            group="events-stream-user",
            key=lambda _group, _request: str(user.pk),
            rate=settings.EVENTS_STREAM_RATE_PER_USER,
        )
    except Throttled as error:
        return Refusal(429, str(error.detail), "throttled", retry_after=error.wait)
    store, _ = role_in_store(user, code)
    if store is None:
        return Refusal(404, "No such store.", "not_found")
    if authenticated:
        return Viewer(store.pk, user.pk, token_key=authenticated[1].key)
    return Viewer(store.pk, user.pk, token_key=None, session_key=request.session.session_key)


def viewers_with_access(viewers: Iterable[Viewer]) -> set[Viewer]:
    """Those of ``viewers`` who may still view their store, as ``authorize`` decides it
    (``stores.access.role_in_store``): an active user, a member of the store or staff
    whose permissions give a role in every store, and the token still theirs or the
    session still their login (not logged out, not expired, no password change since:
    ``session_is_theirs``; sessions live in the database, SESSION_ENGINE's default).
    Two queries, from the primary, whatever the number of viewers: the users (with
    their token and password hash) and their memberships in these stores; a third for
    the sessions when a browser opened one of the streams."""
    viewers = set(viewers)
    user_ids = {viewer.user_id for viewer in viewers}
    store_ids = {viewer.store_id for viewer in viewers}
    if not viewers:
        return set()
    User = get_user_model()
    staff_permissions = Permission.objects.filter(
        functools.reduce(
            operator.or_,
            (
                Q(content_type__app_label=app_label, codename=codename)
                for app_label, codename in (
                    permission.split(".") for _, permission in STAFF_ROLE_PERMISSIONS
                )
            ),
        )
    )
    every_store = Q(is_staff=True) & (
        Q(is_superuser=True)
        | Exists(
            User.user_permissions.through.objects.filter(
                **{User.user_permissions.field.m2m_field_name(): OuterRef("pk")},
                permission__in=staff_permissions,
            )
        )
        | Exists(
            User.groups.through.objects.filter(
                **{User.groups.field.m2m_field_name(): OuterRef("pk")},
                group__permissions__in=staff_permissions,
            )
        )
    )
    users = {
        user_id: (sees_every_store, token_key, User(pk=user_id, password=password))
        for user_id, sees_every_store, token_key, password in User.objects.using(DEFAULT_DB_ALIAS)
        .filter(pk__in=user_ids, is_active=True)
        .annotate(
            sees_every_store=ExpressionWrapper(every_store, output_field=BooleanField()),
            token_key=F("auth_token__key"),
        )
        .values_list("pk", "sees_every_store", "token_key", "password")
    }
    members = set(
        Membership.objects.using(DEFAULT_DB_ALIAS)
        .filter(user_id__in=users.keys(), store_id__in=store_ids)
        .values_list("user_id", "store_id")
    )
    sessions = session_logins({viewer.session_key for viewer in viewers if viewer.session_key})
    return {
        viewer
        for viewer in viewers
        if viewer.user_id in users
        and (users[viewer.user_id][0] or (viewer.user_id, viewer.store_id) in members)
        and (
            session_is_theirs(sessions.get(viewer.session_key), users[viewer.user_id][2])
            if viewer.token_key is None
            else viewer.token_key == users[viewer.user_id][1]
        )
    }


# The session engines that keep every session in the database table.
DATABASE_SESSION_ENGINES = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}

# What ``session_logins`` gives a session it cannot read (kept outside the database).
UNKNOWN = object()


def session_logins(keys: set[str]) -> dict:
    """The login each of these sessions holds, by key, for those that still exist (not
    logged out, not expired): (the user's id as stored, the session's auth hash), in one
    query, from the primary. With sessions kept elsewhere (the cache, signed cookies)
    the process cannot tell, and every key counts as live (``UNKNOWN``)."""
    if not keys:
        return {}
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return dict.fromkeys(keys, UNKNOWN)
    logins = {}
    for session in Session.objects.using(DEFAULT_DB_ALIAS).filter(
        session_key__in=keys, expire_date__gt=timezone.now()
    ):
        data = session.get_decoded()
        logins[session.session_key] = (data.get(SESSION_KEY), data.get(HASH_SESSION_KEY))
    return logins


def session_is_theirs(login, user) -> bool:
    """What ``django.contrib.auth.get_user`` asks of a session on each request: that it
    is still ``user``'s and was made since their password last changed (its hash is the
    password's, under SECRET_KEY or one of SECRET_KEY_FALLBACKS). An open stream makes
    no request, so without this a password change would not end it. ``user`` holds its
    pk and password only: the hash is AbstractBaseUser's, of the password, which the
    project's user model keeps."""
    if login is UNKNOWN:
        return True
    if login is None:
        return False
    user_id, session_hash = login
    try:
        if user_id is None or user._meta.pk.to_python(user_id) != user.pk:
            return False
    except ValidationError:
        return False
    if not hasattr(user, "get_session_auth_hash"):
        return True  # as get_user: a user model without the hash checks no hash
    if not session_hash:
        return False
    return any(
        constant_time_compare(session_hash, expected)
        for expected in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    )


def last_seqs(store_ids: Iterable[int]) -> dict[int, int]:
    """The last seq of each of these stores' logs (a store without events has none),
    in one query, from the primary."""
    return dict(
        StoreEventSequence.objects.using(DEFAULT_DB_ALIAS)
        .filter(store_id__in=set(store_ids))
        .values_list("store_id", "last_seq")
    )


async def pages_since(store_id: int, after: int):
    """The store's events after ``after`` as pages of (seq, type, data), each read in its
    own slot; no empty page."""
    while True:
        page = await in_thread(events_after, store_id, after)
        if page:
            yield page
        if len(page) < PAGE_SIZE:
            return
        after = page[-1][0]


def events_after(store_id: int, after: int) -> list[tuple[int, str, str]]:
    """(seq, type, data) of the store's next ``PAGE_SIZE`` events after ``after``, from
    the primary (a replica may not have the events the stream just heard of)."""
    rows = (
        StockEvent.objects.using(DEFAULT_DB_ALIAS)
        .filter(store_id=store_id, seq__gt=after)
        .select_related("product")
        .only(*EVENT_FIELDS, "product__sku")
        .order_by("seq")[:PAGE_SIZE]
    )
    return [(event.seq, event.type, event_data(event, event.product.sku)) for event in rows]


EVENT_FIELDS = (
    "store",
    "seq",
    "type",
    "product",
    "on_hand",
    "reserved",
    "available",
    "reorder_point",
    "version",
    "at",
)
