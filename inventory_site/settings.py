"""Settings, read from the environment.

With nothing set the project runs embedded: a SQLite file, the local-memory cache and
Celery tasks executed in-process. Setting DATABASE_URL and REDIS_URL switches to the
services mode (PostgreSQL, Redis, a real Celery worker). Every variable read here is
listed in the README.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core ---------------------------------------------------------------------------

# Off unless asked for: a deployment that forgets a variable must not serve debug pages
# or sign sessions with the development key. `make run` and the tests turn it on.
DEBUG = env.bool("DEBUG", default=False)

# Development only: with DEBUG on and no SECRET_KEY, this key signs sessions that matter
# to nobody. With DEBUG off it is refused like any other weak key.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
GENERATE_A_KEY = (
    "set SECRET_KEY to a long random string, e.g. "
    "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')."
)


def weak_secret_key(key: str) -> bool:
    """Weak as Django's deployment check (security.W009) judges it: shorter than 50
    characters, fewer than 5 different ones, or a key known to the world."""
    return (
        len(key) < 50
        or len(set(key)) < 5
        or key == DEVELOPMENT_SECRET_KEY
        or key.startswith("django-insecure-")
    )


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off the site refuses to start without "
            f"a secret key: {GENERATE_A_KEY}"
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
elif not DEBUG and weak_secret_key(SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak. With DEBUG off the site refuses to start with a key "
        "shorter than 50 characters, with fewer than 5 different characters, or the "
        f"development key: {GENERATE_A_KEY}"
    )

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "inventory_site.apps.InventoryAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "accounts",
    "stores",
    "catalog",
    "stock",
    "audit",
    "events",
    "inventory_site.privileges",
]

# Each entry is paid by every request; bench/request_layers.py measures what each costs
# (README, "Performance"). Sessions, CSRF and authentication stay for the browsable API's
# session login; the messages are for the admin's pages only; request metrics are three
# series per request (inventory_site/middleware.py), not django-prometheus's twelve. The
# request id comes first, so that whatever the layers below log (a refused Host header
# included) carries it.
MIDDLEWARE = [
    "audit.middleware.AuditContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "inventory_site.null_characters.RefuseNullCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "inventory_site.middleware.PageMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "inventory_site.middleware.RequestMetricsMiddleware",
]

ROOT_URLCONF = "inventory_site.urls"
WSGI_APPLICATION = "inventory_site.wsgi.application"
ASGI_APPLICATION = "inventory_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
# The HTML pages outside the admin (the low-stock page) log in through the admin.
LOGIN_URL = "admin:login"
# Where a login without a "next" lands: the browsable API's login (/api/v1/auth/login/)
# opens the API root. The admin's login form always sends its own "next" (/admin/).
LOGIN_REDIRECT_URL = "api-root"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# gunicorn serves the static files itself through WhiteNoise (no web server in front is
# needed): without DEBUG the collected ones; with DEBUG straight from the apps, found
# again as they change, so that `bin/run web` on a developer's machine (the services
# mode) serves the admin's styles and the dashboard's script without a collectstatic.
# Right after the security middleware: its headers (HSTS, nosniff) and HTTPS redirect
# apply to static files too, which WhiteNoise answers without going on.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database -----------------------------------------------------------------------
# Embedded: a SQLite file in WAL mode. Every transaction starts IMMEDIATE, so writers
# queue on the database lock up front instead of failing when a reader upgrades.

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Read replicas: PostgreSQL streaming standbys of the primary above, as aliases
# replica_1, replica_2, ... in the order given. Reads that do not decide a sale may go to
# one (inventory_site/replicas); a replica that is down, or lags more than
# REPLICA_MAX_LAG_SECONDS behind the primary, is skipped. In tests a replica is the same
# cluster's standby, so its test database is the primary's (MIRROR), never created on it.
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
REPLICA_DATABASES = []
# A replica that does not answer must cost a request little: it is skipped. It is given
# REPLICA_CONNECT_TIMEOUT to connect; a statement there is cancelled by the replica after
# REPLICA_STATEMENT_TIMEOUT_MS and cut by this process a second later when the replica
# says nothing at all (replicas/deadline.py); TCP keepalives find a kept connection whose
# peer has gone (in 5 + 2 x 3 s), tcp_user_timeout a statement sent into a dead network.
# Options in a replica's URL (?sslmode=require, ?connect_timeout=3) win over these.
REPLICA_STATEMENT_TIMEOUT_MS = env.int("REPLICA_STATEMENT_TIMEOUT_MS", default=5000)
_replica_options = {
    "connect_timeout": env.int("REPLICA_CONNECT_TIMEOUT", default=1),
    "options": f"-c statement_timeout={REPLICA_STATEMENT_TIMEOUT_MS}",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": REPLICA_STATEMENT_TIMEOUT_MS + 1000,
}
if DATABASE_REPLICA_URLS:
    from inventory_site.replicas.deadline import BoundedCursor

    _replica_options["cursor_factory"] = BoundedCursor
for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    _alias = f"replica_{_number}"
    _replica = env.db_url_config(_url)
    DATABASES[_alias] = _replica | {
        "CONN_MAX_AGE": DATABASES["default"].get("CONN_MAX_AGE", 0),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": _replica_options | _replica.get("OPTIONS", {}),
        "TEST": {"MIRROR": "default"},
    }
    REPLICA_DATABASES.append(_alias)
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=5)
# A replica that failed is skipped by each process for this long, then tried again.
REPLICA_DOWN_SECONDS = env.float("REPLICA_DOWN_SECONDS", default=5)
# Tests: refuse, in the process, any statement that writes sent to a replica alias.
REPLICA_WRITE_GUARD = env.bool("REPLICA_WRITE_GUARD", default=False)
if REPLICA_DATABASES:
    # Only with replicas: the router, and the middleware that gives it each request's
    # state and answers with X-Consistency-Token and X-Served-By (after the sessions').
    DATABASE_ROUTERS = ["inventory_site.replicas.routing.ReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
        "inventory_site.replicas.middleware.ReadConsistencyMiddleware",
    )

# Least privilege: the role the app's processes connect as (DATABASE_URL names it), which
# owns nothing and may not rewrite the stock ledger or the audit log. `bin/run migrate`
# migrates as the owner (DATABASE_OWNER_URL) and then grants this role what it may do
# (inventory_site/privileges). Empty: no grants are made.
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="")

# --- Cache (django-redis) -----------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="inventory")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# After Redis failed to answer, each process skips it for this many seconds (answering
# from the database), then lets one request try it again: a Redis that hangs costs one
# SOCKET_TIMEOUT per period, not one per call (inventory_site/cache_outage.py).
CACHE_CIRCUIT_OPEN_SECONDS = env.float("CACHE_CIRCUIT_OPEN_SECONDS", default=5)

# Seconds a stock level stays in the cache before it is read from the database again.
STOCK_CACHE_TTL = env.int("STOCK_CACHE_TTL", default=60)
# Seconds a cached product detail or product list answer lives (changes retire it at once).
CATALOG_CACHE_TTL = env.int("CATALOG_CACHE_TTL", default=300)
# Seconds a cached lookup (token to user, user and store to role, SKU to product) lives, in
# Redis and in each process. Changes retire them at once; this bounds how long a change
# made while Redis was unreachable can go unseen by other processes.
LOOKUP_CACHE_TTL = env.int("LOOKUP_CACHE_TTL", default=60)

# Checkout holds: the TTL when a request names none, how often beat expires due holds,
# and how many it expires per transaction.
RESERVATION_DEFAULT_TTL_SECONDS = env.int("RESERVATION_DEFAULT_TTL_SECONDS", default=900)
RESERVATION_EXPIRY_INTERVAL_SECONDS = env.float("RESERVATION_EXPIRY_INTERVAL_SECONDS", default=30)
RESERVATION_EXPIRY_BATCH_SIZE = env.int("RESERVATION_EXPIRY_BATCH_SIZE", default=500)

# Flash-sale gate (stock.flash_gate): how often a process reads which levels are gated
# (a newly gated level is admitted by Redis in every process within this), how long it
# refuses buyers of a level it saw sold out without asking Redis (a refill reopens it
# within this), how long an admitted buyer's hold may stay unsettled before the
# reconciler gives its tokens back, and how often beat reseeds every gate.
FLASH_GATE_REGISTRY_SECONDS = env.float("FLASH_GATE_REGISTRY_SECONDS", default=1.0)
FLASH_GATE_SOLD_OUT_SECONDS = env.float("FLASH_GATE_SOLD_OUT_SECONDS", default=0.5)
FLASH_GATE_HOLD_SECONDS = env.float("FLASH_GATE_HOLD_SECONDS", default=30)
FLASH_GATE_RECONCILE_SECONDS = env.float("FLASH_GATE_RECONCILE_SECONDS", default=10)

# The store dashboard (/stores/<code>/) follows the store's events live: its browser
# opens EVENTS_STREAM_URL + /api/v1/stores/<code>/events/stream/ (empty: this site's own
# origin, where the load balancer routes that path to `bin/run events`; another origin
# must answer CORS with credentials), and without a stream asks the events API for what
# is new every DASHBOARD_POLL_SECONDS.
EVENTS_STREAM_URL = env.str("EVENTS_STREAM_URL", default="")
# The origins of the sites whose dashboards open this events process's stream from
# another origin (their EVENTS_STREAM_URL names it), with the browser's cookies: CORS
# answered by django-cors-headers, on the stream's path only. Empty: none, and the
# middleware is not installed. A page's origin is scheme, host and port; a cookie is the
# host's whatever the port, so http://localhost:8000 may stream from localhost:8001.
EVENTS_STREAM_ALLOWED_ORIGINS = env.list("EVENTS_STREAM_ALLOWED_ORIGINS", default=[])
if EVENTS_STREAM_ALLOWED_ORIGINS:
    INSTALLED_APPS.append("corsheaders")
    MIDDLEWARE.insert(0, "corsheaders.middleware.CorsMiddleware")
    CORS_ALLOWED_ORIGINS = EVENTS_STREAM_ALLOWED_ORIGINS
    CORS_ALLOW_CREDENTIALS = True
    CORS_URLS_REGEX = r"^/api/v1/stores/[^/]+/events/stream/$"
    CORS_ALLOW_METHODS = ["GET", "OPTIONS"]
    # An EventSource that reconnects sends Last-Event-ID, which is no CORS-safelisted
    # header: the browser asks first (a preflight).
    CORS_ALLOW_HEADERS = ["accept", "authorization", "cache-control", "last-event-id"]
DASHBOARD_POLL_SECONDS = env.float("DASHBOARD_POLL_SECONDS", default=3)

# Bulk stock jobs (POST .../stock/bulk/): items per set-based statement, and how long a
# job may wait queued or run without progress before the sweep (every
# BULK_JOB_SWEEP_INTERVAL_SECONDS, by beat) takes it over, its message or worker lost.
BULK_BATCH_SIZE = env.int("BULK_BATCH_SIZE", default=1000)
BULK_JOB_STALE_SECONDS = env.float("BULK_JOB_STALE_SECONDS", default=60)
BULK_JOB_SWEEP_INTERVAL_SECONDS = env.float("BULK_JOB_SWEEP_INTERVAL_SECONDS", default=30)

# The live stream (events.stream, served by `bin/run events`): a comment line every
# EVENTS_STREAM_HEARTBEAT_SECONDS keeps an idle stream open through proxies, and at most
# EVENTS_STREAM_DB_CONNECTIONS database connections are open at once per events process
# (a stream opens one only to authorize and to read the log, then closes it). Every
# EVENTS_STREAM_CHECK_SECONDS one pass over the open streams sends events no publish
# announced (a seeding) and ends the streams whose user lost access.
EVENTS_STREAM_HEARTBEAT_SECONDS = env.float("EVENTS_STREAM_HEARTBEAT_SECONDS", default=15)
EVENTS_STREAM_DB_CONNECTIONS = env.int("EVENTS_STREAM_DB_CONNECTIONS", default=4)
EVENTS_STREAM_CHECK_SECONDS = env.float("EVENTS_STREAM_CHECK_SECONDS", default=5)
# A woken stream waits this long before it sends, so that the events of that moment go
# out in one write: per event and stream the events process then spends a few
# microseconds, not tens (README "Live stream").
EVENTS_STREAM_FLUSH_SECONDS = env.float("EVENTS_STREAM_FLUSH_SECONDS", default=0.05)
# Commits publish after they commit, so a store's events may be heard out of order: a
# stream that heard one past a gap waits this long for the ones before it, then reads
# them from the log (a publish lost). Reading the log at every jump cost each open
# stream a query per out-of-order publish (README "Live stream").
EVENTS_STREAM_GAP_SECONDS = env.float("EVENTS_STREAM_GAP_SECONDS", default=0.5)

# Audit log: every change adds an outbox entry in its own transaction; a Celery task sent
# on commit relays it, and beat relays leftovers every AUDIT_RELAY_INTERVAL_SECONDS, in
# batches of AUDIT_RELAY_BATCH_SIZE events per transaction. AUDIT_ENABLED=false records
# nothing; it exists for the audit benchmark, not for deployments.
AUDIT_ENABLED = env.bool("AUDIT_ENABLED", default=True)
AUDIT_RELAY_INTERVAL_SECONDS = env.float("AUDIT_RELAY_INTERVAL_SECONDS", default=2)
AUDIT_RELAY_BATCH_SIZE = env.int("AUDIT_RELAY_BATCH_SIZE", default=500)
# A process sends at most one relay message per interval, however many commits it makes.
AUDIT_RELAY_SEND_INTERVAL_SECONDS = env.float("AUDIT_RELAY_SEND_INTERVAL_SECONDS", default=0.5)

# Stock events: the per-store event log keeps this many days of events; `prune_events`
# (daily by beat where the worker may delete them, else `bin/run owner prune_events`)
# deletes older ones. The ledger keeps every change for good; only the log is pruned.
STOCK_EVENT_RETENTION_DAYS = env.int("STOCK_EVENT_RETENTION_DAYS", default=30)
if STOCK_EVENT_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("STOCK_EVENT_RETENTION_DAYS must be at least 1 (days).")

# Webhooks (events.webhooks): every store event is POSTed to its store's active
# subscriptions by Celery, at least once. A delivery that fails is retried after each of
# WEBHOOK_RETRY_SCHEDULE's delays in turn (seconds, each varied by up to
# WEBHOOK_RETRY_JITTER of itself; the default adds up to 27.7 hours), then given up; a
# subscription whose last WEBHOOK_DISABLE_AFTER_FAILURES deliveries were all given up is
# disabled. A receiver that does not answer at all holds its subscription until the next
# try of the event it missed, at most WEBHOOK_HOLD_MAX_SECONDS. Beat sends what a lost
# signal or message left, and what fell due, every WEBHOOK_SWEEP_INTERVAL_SECONDS.
# Receivers on loopback, private, link-local and other non-public addresses are refused
# unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is set (development, tests).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5)
WEBHOOK_RETRY_SCHEDULE = [
    int(delay)
    for delay in env.list(
        "WEBHOOK_RETRY_SCHEDULE",
        default=["5", "30", "120", "600", "1800", "3600", "7200", "14400", "28800", "43200"],
    )
]
WEBHOOK_RETRY_JITTER = env.float("WEBHOOK_RETRY_JITTER", default=0.1)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
WEBHOOK_HOLD_MAX_SECONDS = env.float("WEBHOOK_HOLD_MAX_SECONDS", default=60)
WEBHOOK_ROTATION_GRACE_SECONDS = env.int("WEBHOOK_ROTATION_GRACE_SECONDS", default=24 * 60 * 60)
WEBHOOK_SWEEP_INTERVAL_SECONDS = env.float("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=10)
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=500)
# How often a process reads which stores have webhooks: a store without sends no message.
WEBHOOK_REGISTRY_SECONDS = env.float("WEBHOOK_REGISTRY_SECONDS", default=1.0)
# How long the message after a store's commit waits before its task reads the new events:
# the commits of that moment share one message (events/webhooks/wakeups.py).
WEBHOOK_COALESCE_SECONDS = env.float("WEBHOOK_COALESCE_SECONDS", default=0.1)
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
# Finished deliveries (succeeded, given up) and their attempts are kept this many days
# after they finished, then deleted by the daily prune (`prune_events`, beat's
# `prune-stock-events`); a delivery still due is never deleted.
WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=30)
if WEBHOOK_DELIVERY_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("WEBHOOK_DELIVERY_RETENTION_DAYS must be at least 1 (days).")

# --- Celery -------------------------------------------------------------------------
# No broker configured means embedded mode: tasks run in-process, at once.

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL) or None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# Nothing reads task results: the database rows are the truth. Not storing them spares
# every send a result-backend subscription and Redis a key per task.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker keeps its database connections from task to task as a web worker does from
# request to request (CONN_MAX_AGE, checked around each task: inventory_site/celery.py).
# Celery's Django fix-up would close them after every task unless this is set: each task
# then started a PostgreSQL session, most of a short task's database CPU.
CELERY_DB_REUSE_MAX = 2**31
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Sending a task tries the broker twice, then gives up: with the broker down a request
# must not stall for seconds (kombu's default) on a message that a sweep replaces anyway.
# Workers and beat reconnect on their own schedule (broker_connection_max_retries).
# A broker that accepts connections and never answers must fail too, not hang the
# request: socket timeouts as the cache's (Redis transport; BRPOP waits in the worker's
# event loop, where they do not apply).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
    "socket_connect_timeout": 0.5,
    "socket_timeout": 0.5,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Synced into django-celery-beat's tables when beat starts; editable in the admin.
CELERY_BEAT_SCHEDULE = {
    "expire-reservations": {
        "task": "stock.tasks.expire_reservations",
        "schedule": RESERVATION_EXPIRY_INTERVAL_SECONDS,
    },
    "relay-audit-outbox": {
        "task": "audit.tasks.relay_audit_outbox",
        "schedule": AUDIT_RELAY_INTERVAL_SECONDS,
    },
    "resume-bulk-jobs": {
        "task": "stock.tasks.resume_bulk_jobs",
        "schedule": BULK_JOB_SWEEP_INTERVAL_SECONDS,
    },
    "reconcile-flash-gates": {
        "task": "stock.tasks.reconcile_flash_gates",
        "schedule": FLASH_GATE_RECONCILE_SECONDS,
    },
    "sweep-webhooks": {
        "task": "events.webhooks.tasks.sweep_webhooks",
        "schedule": WEBHOOK_SWEEP_INTERVAL_SECONDS,
    },
    "purge-idempotency-records": {
        "task": "stock.tasks.purge_idempotency_records",
        "schedule": 60 * 60,
    },
    "prune-stock-events": {
        "task": "events.tasks.prune_stock_events",
        "schedule": 24 * 60 * 60,
    },
}

# --- REST API (DRF) ----------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header turns "no credentials" into 401.
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON parser, refusing duplicate keys and too deep nesting (400, not 500).
    "DEFAULT_PARSER_CLASSES": ["inventory_site.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "inventory_site.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # django-filter's, refusing unknown query parameters (400) on every list.
    "DEFAULT_FILTER_BACKENDS": ["inventory_site.api.filters.FilterBackend"],
    "EXCEPTION_HANDLER": "inventory_site.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Names of the browsable API's pages and breadcrumbs: "Stores / Store / Stock levels".
    "VIEW_NAME_FUNCTION": "inventory_site.api.root.view_name",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Inventory API",
    "DESCRIPTION": (
        "Stock for many stores against one shared catalog.\n\n"
        "Read consistency: where the deployment has read replicas, the answer to a request "
        "that wrote, and a bulk job's status once it is done or failed, carries "
        "`X-Consistency-Token`; send it back on later reads (same "
        "header) and they never see data older than that write. Every answer then says "
        "`X-Served-By: replica` or `primary`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI from the installed sidecar package, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for the stock event types wherever they appear (the log, webhook filters).
    "ENUM_NAME_OVERRIDES": {"StockEventTypeEnum": "events.models.EventType"},
    # The live stream is a plain async view, which drf-spectacular does not see alone.
    "PREPROCESSING_HOOKS": ["events.schema.with_event_stream"],
}

# Rate limits (django-ratelimit), counted in the shared cache so that every app-server
# worker sees the same counters. Rates are "<count>/<s|m|h|d>".
RATELIMIT_USE_CACHE = "default"
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
# When the cache cannot count (Redis down), let requests through rather than refuse all.
RATELIMIT_FAIL_OPEN = env.bool("RATELIMIT_FAIL_OPEN", default=True)
RATELIMIT_IP_META_KEY = "inventory_site.api.ratelimits.client_ip"
API_RATE_PER_USER = env.str("API_RATE_PER_USER", default="600/m")
API_RATE_PER_IP = env.str("API_RATE_PER_IP", default="1200/m")
API_RATE_TOKEN_PER_IP = env.str("API_RATE_TOKEN_PER_IP", default="10/m")
# Attempts at the login forms (/admin/login/, /api/v1/auth/login/) per client address.
LOGIN_RATE_PER_IP = env.str("LOGIN_RATE_PER_IP", default="10/m")
# Attempts at any login path per username, whatever the address. Above what one address
# may try (the two limits above), so that one address alone cannot lock an account out.
LOGIN_RATE_PER_USERNAME = env.str("LOGIN_RATE_PER_USERNAME", default="30/m")
# Live streams one user may open (`bin/run events`), whatever the store: an EventSource
# reconnects every 3 s when its stream fails, so a few tabs stay well under it.
EVENTS_STREAM_RATE_PER_USER = env.str("EVENTS_STREAM_RATE_PER_USER", default="60/m")
# How many proxies in front of the app append to X-Forwarded-For. 0: the client address
# is REMOTE_ADDR, and X-Forwarded-For (which any client can forge) is ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# The largest request body read, in bytes; the API answers a larger one 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# The same for POST .../stock/bulk/ alone, instead of the limit above: its 10,000 items
# take up to 1.8 MB (64-character SKUs, every number at its longest, indented by four
# spaces); 4 MiB leaves room for any layout without raising every endpoint's limit.
BULK_MAX_BODY_BYTES = env.int("BULK_MAX_BODY_BYTES", default=4_194_304)

# How long a stored Idempotency-Key answer is replayed.
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 60 * 60)

# --- Security: HTTPS ----------------------------------------------------------------
# Only meaningful behind HTTPS, so off by default (the embedded mode and docker-compose
# serve plain HTTP on localhost). A deployment behind TLS turns all of them on; the README
# lists them, and `manage.py check --deploy --fail-level WARNING` passes with them.

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("SECURE_PROXY_SSL_HEADER", default=False)
    else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Health checks and the Prometheus scrape come over plain HTTP from inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Metrics ------------------------------------------------------------------------
# When set, GET /metrics answers only requests with "Authorization: Bearer <token>".
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# bin/run web sets PROMETHEUS_MULTIPROC_DIR so that gunicorn's workers share counters;
# any process that inherits it (a manage.py command) needs the directory to exist.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# --- Logging ------------------------------------------------------------------------
# One JSON object per line for log collectors, or readable lines for a developer's
# console; either way with the request id, user and store of the request or task that
# wrote it (inventory_site/logs.py). Celery's workers and beat log through this too.

LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "inventory_site.logs.formatter", "log_format": LOG_FORMAT},
    },
    "filters": {
        "refusals_without_traceback": {"()": "inventory_site.log_filters.RefusalsWithoutTraceback"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "filters": ["refusals_without_traceback"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own loggers propagate to the root handler instead of printing twice.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}
if CELERY_TASK_ALWAYS_EAGER:
    # Tasks run in-process here: a line per task run (the audit relay runs after every
    # commit) and kombu's note that the in-memory broker has no host name are noise.
    LOGGING["loggers"] |= {
        "celery.app.trace": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
    }
