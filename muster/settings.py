"""Muster's one settings module.

Everything comes from the environment. With nothing set, Muster runs embedded: SQLite in WAL
mode, the in-memory channel layer and Celery's in-memory broker, all inside one process
(`manage.py muster_up`). With DATABASE_URL and REDIS_URL set, it runs on PostgreSQL (psycopg 3
with a connection pool) and Redis (Celery broker, Channels layer, cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core.networks import NetworkError, parse_networks
from muster import queues

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env.str("MUSTER_DATA_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    # Embedded mode: a random key kept in the data dir, so sessions survive restarts.
    from muster.secretkey import load_or_create_secret_key

    SECRET_KEY = load_or_create_secret_key(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public URL people and providers reach Muster at; ingest URLs and Twilio signatures use it.
PUBLIC_URL = env.str("MUSTER_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
if PUBLIC_URL not in CSRF_TRUSTED_ORIGINS:
    CSRF_TRUSTED_ORIGINS.append(PUBLIC_URL)
# Signing in, sessions, proxies, TLS (HSTS, the https redirect), /metrics' token.
from muster.security_settings import *  # noqa: E402, F403

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "muster",
    "accounts",
    "incidents",
    "alerts",
    "oncall",
    "warroom",
    "runbooks",
    "django_htmx",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # After the https redirect: refuses plain-HTTP writes to the paths exempt from it.
    "muster.middleware.RefusePlainHttpWrites",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "muster.urls"
WSGI_APPLICATION = "muster.wsgi.application"
ASGI_APPLICATION = "muster.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/incidents/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context.delivery",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI, persistent connections leak (Django ticket #33497): use psycopg's pool.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN", default=2),
            "max_size": env.int("DATABASE_POOL_MAX", default=20),
            "timeout": 10,
        }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "muster.sqlite3",
            "OPTIONS": {
                # WAL lets readers run beside the writer; IMMEDIATE transactions and a busy
                # timeout make concurrent writers wait for each other instead of failing.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, Channels layer, cache --------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not REDIS_URL
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL  # redis:// and rediss:// by muster.broker's transport
    # Workers take from the queues in CELERY_TASK_QUEUES' order: paging first (muster.queues).
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, str | float] = {"queue_order_strategy": "priority"}
    # "pubsub": faster fan-out to many clients (bench/warroom.py); "core": the list-based layer.
    _LAYERS = {
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "core": "channels_redis.core.RedisChannelLayer",
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _LAYERS[env.str("MUSTER_CHANNEL_LAYER", default="pubsub")],
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "muster"},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "muster.cache.MusterRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "muster",
        }
    }
else:
    # Every in-memory part lives in the one embedded process, so tasks, the beat tick and
    # websocket broadcasts all reach each other.
    CELERY_BROKER_URL = "memory://localhost/"  # a host, or kombu warns it assumed one
    # The in-memory transport polls; poll often so a kicked task starts at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.05}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_TASK_ALWAYS_EAGER = False
# Three queues, consumed by every worker in order: paging, ingest, the bot (muster.queues).
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT
CELERY_TASK_QUEUES = queues.QUEUES
CELERY_TASK_ROUTES = queues.ROUTES
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every beat (`celery beat`, `celery worker -B`, the embedded mode's thread) publishes only while
# it holds the "beat" lease, a database row (muster/beat.py): run two or more, safely.
CELERY_BEAT_SCHEDULER = "muster.beat:LeasedScheduler"
# The holder renews every RENEW seconds; when it dies, another takes over once TTL has passed
# since its last renewal: the tick pauses for at most TTL + RENEW seconds (7 by default).
BEAT_LEASE_TTL_SECONDS = env.float("MUSTER_BEAT_LEASE_TTL_SECONDS", default=6.0)
BEAT_LEASE_RENEW_SECONDS = env.float("MUSTER_BEAT_LEASE_RENEW_SECONDS", default=1.0)
CELERY_BEAT_SCHEDULE = {
    # Twice a second: a due escalation step waits at most half a second for its tick.
    "tick": {"task": "muster.tick", "schedule": 0.5},
    "purge-raw-payloads": {"task": "alerts.purge_raw_payloads", "schedule": 3600.0},
    # Runbook action runs no worker picked up are enqueued again; runs whose worker died fail.
    "runbooks-sweep-runs": {"task": "runbooks.sweep_runs", "schedule": 30.0},
    "accounts-sweep-signins": {"task": "accounts.sweep_signins", "schedule": 3600.0},
    # Replay and abuse records past their window: verification limits, Twilio SIDs seen.
    "forget-verification-budgets": {
        "task": "oncall.forget_verification_budgets",
        "schedule": 3600.0,
    },
    "forget-twilio-requests": {"task": "warroom.forget_twilio_requests", "schedule": 3600.0},
    # Chat posts and channels no worker picked up (a flushed broker), and posts that never got
    # an answer: delivered, or made `unknown`, within seconds.
    "chat-sweep": {"task": "warroom.chat_sweep", "schedule": 5.0},
}

# --- Muster ---------------------------------------------------------------------------------
INCIDENT_NUMBER_START = env.int("MUSTER_INCIDENT_NUMBER_START", default=1000)
INGEST_MAX_BODY_BYTES = env.int("MUSTER_INGEST_MAX_BODY_BYTES", default=1024 * 1024)
# PagerDuty-compatible rate limit per integration (events per minute), answered with 429.
INGEST_RATE_LIMIT_PER_MINUTE = env.int("MUSTER_INGEST_RATE_LIMIT_PER_MINUTE", default=120_000)
# A web process that saw a processor on its way less than this long ago does not ask again
# (alerts/pending.py, kick); 0 asks on every request.
INGEST_KICK_MEMO_SECONDS = env.float("MUSTER_INGEST_KICK_MEMO_SECONDS", default=0.02)
# A processor under load starts a batch at most this often while its batches stay small, so each
# takes more requests (alerts.processor); 0: at once.
INGEST_GATHER_SECONDS = env.float("MUSTER_INGEST_GATHER_SECONDS", default=0.05)
# New and severe alerts are processed ahead of a backlog (alerts.processor); off: arrival order.
INGEST_URGENT_FIRST = env.bool("MUSTER_INGEST_URGENT_FIRST", default=True)
INGEST_LANES = env.int("MUSTER_INGEST_LANES", default=1)  # processors side by side (alerts.lanes)
RAW_PAYLOAD_RETENTION_DAYS = env.int("MUSTER_RAW_PAYLOAD_RETENTION_DAYS", default=30)
# A responder's silence lasts at most this long (API, web and chat alike); admins have no cap.
SILENCE_MAX_DAYS = env.int("MUSTER_SILENCE_MAX_DAYS", default=30)
# The console outbox (the embedded default's stand-in for Twilio) keeps its latest N messages.
OUTBOX_KEEP = env.int("MUSTER_OUTBOX_KEEP", default=10_000)
# The beat tick must have run within this many seconds for `/readyz?role=worker` to answer 200.
READY_TICK_MAX_AGE_SECONDS = env.int("MUSTER_READY_TICK_MAX_AGE_SECONDS", default=10)
# Where runbook actions may connect (core.networks): CIDR lists. Loopback, link-local and cloud
# metadata addresses are denied by default, private ranges allowed; the most specific network
# decides. A bad entry stops the start.
ACTION_ALLOWED_NETWORKS = env.list("MUSTER_ACTION_ALLOWED_NETWORKS", default=[])
ACTION_DENIED_NETWORKS = env.list("MUSTER_ACTION_DENIED_NETWORKS", default=[])
try:
    parse_networks([*ACTION_ALLOWED_NETWORKS, *ACTION_DENIED_NETWORKS])
except NetworkError as exc:
    raise ImproperlyConfigured(f"MUSTER_ACTION_ALLOWED/DENIED_NETWORKS: {exc}") from None
# A worker's threads that may wait on runbook actions' endpoints at once (core.slots).
ACTION_THREADS = env.int("MUSTER_ACTION_THREADS", default=1)
# Timeline milestones for repeated duplicates: 10th, 100th, 1000th, ... occurrence.
DEDUP_MILESTONE_BASE = 10
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440)

# --- Paging ---------------------------------------------------------------------------------
# Twilio is on with its credentials; else SMS and calls go to the console outbox (/api/v1/outbox/).
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
# Twilio's API by default; a Twilio-compatible provider (SignalWire) or a test double otherwise.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
TWILIO_TIMEOUT_SECONDS = env.int("TWILIO_TIMEOUT_SECONDS", default=10)
# An inbound SMS (MessageSid) or keypress (CallSid and gather step) is acted on once; the ones
# seen are remembered this long (warroom.replay), and a keypress for an older page is refused.
TWILIO_REPLAY_WINDOW_DAYS = env.int("MUSTER_TWILIO_REPLAY_WINDOW_DAYS", default=30)
# --- Slack (warroom/slack) -----------------------------------------------------------------
# The Slack app switches on when both are set; without them /slack/... answers 404.
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
# Slack's Web API by default; a compatible test double otherwise (ends with "/").
SLACK_API_BASE_URL = (
    env.str("SLACK_API_BASE_URL", default="https://slack.com/api/").rstrip("/") + "/"
)
# An incident's own channel is named <prefix><number>-<title>: inc-1042-disk-full-on-db-1.
SLACK_CHANNEL_PREFIX = env.str("SLACK_CHANNEL_PREFIX", default="inc-")
# Email (pages, verification codes, status updates): EMAIL_URL, as in
# smtp+tls://user:password@mail.example.com:587 (STARTTLS) or smtp+ssl://…:465; or Django's
# own EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS,
# EMAIL_USE_SSL; or EMAIL_BACKEND for another backend. With none of them, mail goes to the
# console: the embedded default, refused at start-up outside it (MUSTER_ALLOW_CONSOLE_DELIVERY).
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if "EMAIL_HOST" in os.environ
    else "django.core.mail.backends.console.EmailBackend",
)
if env.str("EMAIL_URL", default=""):
    globals().update(
        {k: v for k, v in env.email_url("EMAIL_URL").items() if k.startswith("EMAIL_") and v}
    )
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="muster@localhost")
# Outside the embedded mode, web and worker refuse to start while SMS, calls or email would
# only reach the console, unless this says that is meant (a staging box, CI).
ALLOW_CONSOLE_DELIVERY = env.bool("MUSTER_ALLOW_CONSOLE_DELIVERY", default=False)
# A page handed to the provider with no answer within this many seconds becomes `unknown`.
PAGE_SENDING_DEADLINE_SECONDS = env.int("MUSTER_PAGE_SENDING_DEADLINE_SECONDS", default=60)
# A queued page not picked up by a worker within this many seconds is enqueued again.
PAGE_REQUEUE_AFTER_SECONDS = env.int("MUSTER_PAGE_REQUEUE_AFTER_SECONDS", default=5)
PAGE_MAX_ATTEMPTS = env.int("MUSTER_PAGE_MAX_ATTEMPTS", default=3)
# A worker process's threads for each paging provider (Twilio, the mail server), apart from its
# task threads (core.pools): a slow or hanging Twilio holds these, never the task threads.
PAGING_THREADS = env.int("MUSTER_PAGING_THREADS", default=6)
# At most this many calls (and SMS) to one person per window, one per page; above it, pages
# are bundled: high urgency within a minute, low urgency when the window allows.
PAGE_RATE_LIMIT_COUNT = env.int("MUSTER_PAGE_RATE_LIMIT_COUNT", default=3)
PAGE_RATE_LIMIT_WINDOW_MINUTES = env.int("MUSTER_PAGE_RATE_LIMIT_WINDOW_MINUTES", default=15)
# Above the limit, at most one bundle (an SMS or call naming every incident held) this often.
PAGE_BUNDLE_SECONDS = env.int("MUSTER_PAGE_BUNDLE_SECONDS", default=60)

# --- Mattermost: the slash command /muster (warroom.mattermost) -----------------------------
# On when MATTERMOST_URL and at least one slash command's token are set; else /mattermost/… is 404.
MATTERMOST_URL = env.str("MATTERMOST_URL", default="").rstrip("/")
# A bot account's access token: Muster reads who typed a command (GET /api/v4/users/{id}).
MATTERMOST_BOT_TOKEN = env.str("MATTERMOST_BOT_TOKEN", default="")
# The tokens Mattermost shows for each slash command that posts to /mattermost/commands/.
MATTERMOST_COMMAND_TOKENS = [t for t in env.list("MATTERMOST_COMMAND_TOKENS", default=[]) if t]
# The team (its URL name) where incident channels are made; else posts go to shared channels only.
MATTERMOST_TEAM = env.str("MATTERMOST_TEAM", default="")
MATTERMOST_CHANNEL_PREFIX = env.str("MATTERMOST_CHANNEL_PREFIX", default="inc-")
# --- Chat channels and their outbox (warroom.chat) ----------------------------------------------
# A post handed to Slack or Mattermost with no answer this long is `unknown`: never sent again.
CHAT_SENDING_DEADLINE_SECONDS = env.int("MUSTER_CHAT_SENDING_DEADLINE_SECONDS", default=30)
# Tries of a post (or a channel) Slack or Mattermost refused while it may pass (down, 5xx).
CHAT_MAX_ATTEMPTS = env.int("MUSTER_CHAT_MAX_ATTEMPTS", default=8)
# A worker's threads that may wait on each chat platform (Slack, Mattermost) at once (core.slots).
CHAT_THREADS = env.int("MUSTER_CHAT_THREADS", default=1)

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.RolePermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "muster.error_handlers.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Muster API",
    "DESCRIPTION": "Incidents, alerts, integrations, routing and silences.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every operation lists its error responses too (core.api_schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_schema.document_errors",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for each choice set used by several fields.
    "ENUM_NAME_OVERRIDES": {
        "UrgencyEnum": "incidents.models.Urgency",
        "SourceEnum": "incidents.models.Source",
        "IntegrationKindEnum": "alerts.models.Kind",
        "EntryKindEnum": "incidents.models.EntryKind",
        "IncidentStatusEnum": "incidents.models.Status",
        "ChatChannelModeEnum": "incidents.models.ChatChannelMode",
    },
}

# --- i18n, static, logging ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# Serve static files from the apps directly: no collectstatic step before the first start.
WHITENOISE_USE_FINDERS = True
# Only for `collectstatic`; unset, WhiteNoise serves from the apps alone (a STATIC_ROOT that
# does not exist makes it warn on every start, and in every test).
STATIC_ROOT = env.str("STATIC_ROOT", default="") or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        "not_outbox": {
            "()": "django.utils.log.CallbackFilter",
            "callback": lambda record: not record.name.startswith("muster.outbox"),
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["not_outbox"],
        },
        # The console outbox is output, as the console email backend's is: on stdout, beside
        # what `./musterctl up` prints, rather than among the diagnostics on stderr.
        "outbox": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "muster.outbox": {"handlers": ["outbox"]},
        "django.server": {"level": "WARNING"},
        "daphne.server": {"level": "WARNING"},
        # Its start-up banner and every successful sign-in; failures and lock-outs stay.
        "axes": {"level": "WARNING"},
        # The SDK logs every request at INFO.
        "twilio.http_client": {"level": "WARNING"},
    },
}

# --- War rooms ---------------------------------------------------------------------------------
# Attachments are stored here (served only through the API, to people who may read the room).
MEDIA_ROOT = env.str("MUSTER_MEDIA_ROOT", default=str(DATA_DIR / "media"))
WARROOM_ATTACHMENT_MAX_BYTES = env.int("MUSTER_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
# The largest request body muster.asgi takes (muster.body_limit): an attachment and its form,
# or an ingest body, whichever is larger. nginx caps production's bodies before this.
MAX_BODY_BYTES = env.int(
    "MUSTER_MAX_BODY_BYTES",
    default=max(WARROOM_ATTACHMENT_MAX_BYTES + 1024 * 1024, INGEST_MAX_BODY_BYTES + 64 * 1024),
)

# Hosts (e.g. "grafana.example.com", or "host:port") whose images chat and the bot show inline;
# any other image is a link, so no alert or message makes readers' browsers fetch from elsewhere.
IMAGE_HOSTS = env.list("MUSTER_IMAGE_HOSTS", default=[])

# --- Content-Security-Policy (django-csp) -------------------------------------------------------
# The web UI runs only its own static scripts and styles (no inline script, handler or style);
# websockets are same-origin ('self' covers ws: and wss: on the page's host). The API docs
# (muster/urls.py) and the printable postmortem (incidents/postmortem_api.py) widen it for
# themselves only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, *IMAGE_HOSTS],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
