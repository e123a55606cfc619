"""Settings shared by every environment. Values come from the environment (django-environ).

Environment-specific modules (dev, test, production) import this and supply defaults,
or, in production, insist on explicit values.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
RUN_DIR = BASE_DIR / ".run"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Public https origin Infobip (webhooks) and TikTok (uploaded images) reach us at.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "channels",
    "axes",
    "inbox",
    "tiktok_channel",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login attempt into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Providers' webhooks (config/handlers.py, config/wsgi.py): no session, CSRF token, user, messages or page, so only
# the security headers and the SSL redirect. Every path under these prefixes is served through this list.
WEBHOOK_PATH_PREFIXES = ["/webhooks/"]
WEBHOOK_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                # Staff see connections that need an admin (e.g. re-authorization) on every page.
                "tiktok_channel.direct.context_processors.connection_alerts",
            ],
        },
    },
]


def database_from_env(default: str) -> dict:
    """DATABASE_URL as a Django DATABASES entry, tuned per engine."""
    db = env.db_url("DATABASE_URL", default=default)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # The embedded default runs web, worker and beat against one file: WAL lets readers
        # proceed during a write, IMMEDIATE takes the write lock up front instead of failing
        # half-way with "database is locked".
        db.setdefault("OPTIONS", {}).update(
            {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    else:
        # 0 by default: under ASGI (uvicorn) each request runs in its own thread and a persistent connection
        # per thread exhausts PostgreSQL; WSGI workers (gunicorn) may set CONN_MAX_AGE=60 (see README).
        db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
        # A round trip before each request's first query. WSGI workers with persistent connections may turn it
        # off (README "Deployment at scale"): after a database restart each worker then fails one request (the
        # webhook answers 503, Infobip retries) and reconnects.
        db.setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=True))
    return db


DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.storage.StaticStorage"},
}

LOGIN_URL = "admin:login"

# Failed-login throttling (django-axes) for the agents' login page and the admin's alike: after
# AXES_FAILURE_LIMIT failures for one username (from any address) lock that username out for
# AXES_COOLOFF_TIME; a successful login resets the count. Per username, not only per (username, IP): an address
# is cheap to change (many hosts, or a forwarded header a server trusts; issue 21), so a guesser cannot reset the
# count by moving. The price: anyone can lock an agent out for the cool-off time; other agents still log in.
# Behind a proxy, REMOTE_ADDR must be the client's address (README, Deployment: trusted proxy headers).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# (username, IP) is kept beside username alone: the same lock, and axes.W006 wants ip_address present.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Fernet keys for secrets at rest (API keys, webhook secrets). The first key encrypts,
# every key decrypts: prepend a new key, run `manage.py rotate_encryption_keys`, then drop the old one.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

# One redis-py client per pool, not per call (config/cache.py).
CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": REDIS_URL}}

# Redis pub/sub: a group_send is one PUBLISH, and each server process hands it to its own consumers, where the
# list-based layer pushes a copy per consumer. Live events are hints (at most once), which is what pub/sub
# gives; the live-tick p95 with 100 agents fell from 101–180 ms to 48–80 ms with it (bench/README.md).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": env.str("CHANNEL_LAYER_BACKEND", default="channels_redis.pubsub.RedisPubSubChannelLayer"),
        # Redis pub/sub channels are server-wide, not per database: stacks sharing one Redis need their own prefix.
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi")},
    }
}

CELERY_BROKER_URL = REDIS_URL
# A task reserved but not acknowledged this long (a worker killed mid-task) is handed out again. It must
# exceed the longest retry countdown plus a task's run time, or a waiting retry is delivered twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
# The queue every task goes to and workers consume; the end-to-end tests use one per run.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE["outbox-sweep-queued-messages"] = {
    "task": "inbox.tasks.sweep_queued_messages",
    "schedule": 30.0,
}
CELERY_BEAT_SCHEDULE["outbox-apply-parked-reports"] = {
    "task": "inbox.tasks.apply_parked_reports",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["inbox-wake-snoozed-conversations"] = {
    "task": "inbox.tasks.wake_snoozed_conversations",
    "schedule": 30.0,
}
CELERY_BEAT_SCHEDULE["outbox-reconcile-accepted-messages"] = {
    "task": "inbox.tasks.reconcile_accepted_messages",
    "schedule": env.float("RECONCILE_EVERY_SECONDS", default=300.0),
}
CELERY_BEAT_SCHEDULE["tiktok-direct-refresh-tokens"] = {
    "task": "tiktok_channel.direct.tasks.refresh_expiring_tokens",
    "schedule": 60.0,
}
CELERY_IMPORTS = ["inbox.reports.tasks", "tiktok_channel.ads.tasks"]
CELERY_BEAT_SCHEDULE["tiktok-direct-sync-comments"] = {
    "task": "tiktok_channel.direct.tasks.sync_comments_all",
    "schedule": env.float("TIKTOK_COMMENT_SYNC_EVERY_SECONDS", default=300.0),
}
CELERY_BEAT_SCHEDULE["tiktok-engagement-sync"] = {
    "task": "tiktok_channel.direct.engagement.tasks.sync_all_engagement",
    "schedule": env.float("TIKTOK_ENGAGEMENT_SYNC_EVERY_SECONDS", default=3600.0),
}
CELERY_BEAT_SCHEDULE["tiktok-engagement-first-sync"] = {
    "task": "tiktok_channel.direct.engagement.tasks.sync_all_engagement",
    "schedule": 60.0,
    "kwargs": {"only_new": True},
}
CELERY_BEAT_SCHEDULE["tiktok-posts-resume-stalled"] = {
    "task": "tiktok_channel.direct.publishing.tasks.resume_stalled_posts",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["tiktok-ads-sync-metrics"] = {
    "task": "tiktok_channel.ads.tasks.sync_all_metrics",
    "schedule": env.float("TIKTOK_ADS_METRICS_EVERY_SECONDS", default=3600.0),
}
CELERY_BEAT_SCHEDULE["reports-refresh-rollups"] = {
    "task": "inbox.reports.tasks.refresh_report_rollups",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["inbox-prune-webhook-ledger"] = {
    "task": "inbox.tasks.prune_webhook_ledger",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["inbox-sweep-orphan-uploads"] = {
    "task": "inbox.tasks.sweep_orphan_uploads",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["routing-expire-presence"] = {
    "task": "inbox.automation.tasks.expire_presence",
    "schedule": 15.0,
}
CELERY_BEAT_SCHEDULE["automation-no-agent-reply"] = {
    "task": "inbox.automation.tasks.run_no_reply_rules",
    "schedule": 60.0,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "inbox.api.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "inbox.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "inbox.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
}

# Content-Security-Policy (django-csp): scripts only from our own origin, so injected markup cannot run.
# Inline styles stay allowed (Django admin uses style attributes; styles cannot execute code).
# connect-src 'self' covers our own ws:/wss: (CSP3); no other host can be reached from the page.
# CSP_IMG_HOSTS: where shown images (customers' images, avatars, uploads behind a CDN) may come from besides us.
# The hosts TikTok/Infobip serve media from are not documented to us, so the default stays "https:"; name them
# (e.g. "https://*.tiktokcdn.com,https://api.infobip.com") once seen in production.
CSP_IMG_HOSTS = env.list("CSP_IMG_HOSTS", default=["https:"])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *CSP_IMG_HOSTS],
        "media-src": ["'self'", *CSP_IMG_HOSTS],
        "connect-src": ["'self'"],
        "frame-src": ["https://www.tiktok.com"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

SPECTACULAR_SETTINGS = {
    "TITLE": "TikTok Inbox API",
    "DESCRIPTION": "Conversations, messages and contacts of the TikTok contact center. Errors are always "
    '`{"code", "message", "fields"}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Documentation assets from the drf-spectacular-sidecar package, not a CDN.
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatus": "inbox.models.Conversation.Status",
        "MessageStatus": "inbox.models.Message.Status",
        "AgentAvailabilityStatus": "inbox.automation.models.AgentAvailability.Status",
        "AutomationRuleEvent": "inbox.automation.models.AutomationRule.Event",
        "ConversionEvent": "inbox.models.Conversion.Event",
        "ConversationKind": "inbox.models.Conversation.Kind",
        "ReportChartKind": ["line", "bar", "heatmap"],
        "VideoState": "tiktok_channel.direct.engagement.models.Video.State",
        "TikTokConnectionState": "tiktok_channel.direct.models.TikTokConnection.State",
        "MessageAction": "inbox.providers.MESSAGE_ACTIONS",
        "MessagePublicState": "inbox.models.Message.PublicState",
    },
}

# Product limits (see README "Configuration").
REPLY_WINDOW_HOURS = env.int("REPLY_WINDOW_HOURS", default=48)
REPLY_QUOTA_PER_WINDOW = env.int("REPLY_QUOTA_PER_WINDOW", default=10)
# An agent whose last browser tab closed is offline after this long (a reload or a flaky network is not leaving).
AGENT_OFFLINE_GRACE_SECONDS = env.int("AGENT_OFFLINE_GRACE_SECONDS", default=60)
# How long a CSAT rating link stays valid (it is single-use as well).
CSAT_LINK_DAYS = env.int("CSAT_LINK_DAYS", default=7)
# Automation rules' outgoing webhooks: tries before a delivery is failed; http:// and private addresses only
# where a test or a private network needs them (they are refused by default: no requests into our own network).
AUTOMATION_WEBHOOK_MAX_TRIES = env.int("AUTOMATION_WEBHOOK_MAX_TRIES", default=6)
# Backoff between tries: base * 2^n with jitter, at most the max (below CELERY_VISIBILITY_TIMEOUT, or a waiting
# retry would be handed out twice).
AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS = env.float("AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
AUTOMATION_WEBHOOK_RETRY_MAX_SECONDS = env.float("AUTOMATION_WEBHOOK_RETRY_MAX_SECONDS", default=1800.0)
AUTOMATION_WEBHOOK_ALLOW_HTTP = env.bool("AUTOMATION_WEBHOOK_ALLOW_HTTP", default=False)
AUTOMATION_WEBHOOK_ALLOW_PRIVATE = env.bool("AUTOMATION_WEBHOOK_ALLOW_PRIVATE", default=False)
# Ads conversions an agent can report per conversation and hour (429 above): a sanity bound on fat fingers and abuse.
CONVERSIONS_PER_CONVERSATION_PER_HOUR = env.int("CONVERSIONS_PER_CONVERSATION_PER_HOUR", default=10)
# Report roll-ups kept by the domain-event subscriber (inbox/reports/rollups.py). deferred: events mark their
# conversations and a Celery task refreshes them, coalesced, a second later; inline: refreshed right after each
# commit (the tests); off: not kept (only to measure ingest without them; run rebuild_reports after).
REPORTS_ROLLUPS = env.str("REPORTS_ROLLUPS", default="deferred")
if REPORTS_ROLLUPS not in ("deferred", "inline", "off"):
    raise ImproperlyConfigured("REPORTS_ROLLUPS must be 'deferred', 'inline' or 'off'")
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES
# deferred: the webhook stores the request (one INSERT) and answers; `manage.py process_webhooks` applies it.
# inline: the webhook applies it before answering (no processor needed; slower under load).
WEBHOOK_PROCESSING = env.str("WEBHOOK_PROCESSING", default="deferred")
# The webhook ledger keeps every request it stored: applied ones for this many days (replay, the admin's audit of
# what Infobip sent), the ones worth a look (partial, rejected, failed) for the second figure; pending rows always.
WEBHOOK_LEDGER_KEEP_DAYS = env.int("WEBHOOK_LEDGER_KEEP_DAYS", default=30)
WEBHOOK_LEDGER_KEEP_TROUBLE_DAYS = env.int("WEBHOOK_LEDGER_KEEP_TROUBLE_DAYS", default=90)
if WEBHOOK_PROCESSING not in ("deferred", "inline"):
    raise ImproperlyConfigured("WEBHOOK_PROCESSING must be 'deferred' or 'inline'")

# Calls to Infobip (tiktok_channel/client.py): connect and read timeouts of every call.
INFOBIP_CONNECT_TIMEOUT = env.float("INFOBIP_CONNECT_TIMEOUT", default=5.0)
INFOBIP_READ_TIMEOUT = env.float("INFOBIP_READ_TIMEOUT", default=15.0)
# Health of an Infobip connection (tiktok_channel/health.py): red when a send Infobip accepted has waited this long
# with no webhook of any kind arriving since (a broken subscription looks exactly so).
INFOBIP_HEALTH_SILENCE_SECONDS = env.int("INFOBIP_HEALTH_SILENCE_SECONDS", default=900)
# Write a webhook's arrival at most this often per kind and web process (0: every arrival). Above 0 the health
# verdict gives a send accepted within that interval after the recorded arrival the benefit of the doubt, so one
# such send before a subscription breaks does not turn the page red by itself (tiktok_channel/health.py).
INFOBIP_HEALTH_RECORD_EVERY_SECONDS = env.float("INFOBIP_HEALTH_RECORD_EVERY_SECONDS", default=0.0)
# The outbox (inbox/outbox.py), for every provider: the retry budget of one attempt (tries and seconds since
# its first try) before it is marked failed, the backoff, and how long one send may hold its lease. The
# INFOBIP_SEND_* names of earlier releases are still read when the OUTBOX_* ones are not set.
OUTBOX_SEND_MAX_TRIES = env.int("OUTBOX_SEND_MAX_TRIES", default=env.int("INFOBIP_SEND_MAX_TRIES", default=6))
OUTBOX_SEND_BUDGET_SECONDS = env.float(
    "OUTBOX_SEND_BUDGET_SECONDS", default=env.float("INFOBIP_SEND_BUDGET_SECONDS", default=600.0)
)
OUTBOX_RETRY_BASE_SECONDS = env.float(
    "OUTBOX_RETRY_BASE_SECONDS", default=env.float("INFOBIP_SEND_RETRY_BASE_SECONDS", default=5.0)
)
OUTBOX_RETRY_MAX_DELAY_SECONDS = env.float(
    "OUTBOX_RETRY_MAX_DELAY_SECONDS", default=env.float("INFOBIP_SEND_RETRY_MAX_DELAY_SECONDS", default=300.0)
)
OUTBOX_SEND_LEASE_SECONDS = env.float("OUTBOX_SEND_LEASE_SECONDS", default=35.0)
OUTBOUND_STUCK_AFTER_SECONDS = env.int("OUTBOUND_STUCK_AFTER_SECONDS", default=60)
# Batched sends: at most this many replies of one sender (one per conversation) in one POST /tiktok/1/messages.
# Infobip's spec sets no limit on messages[]; 100 keeps one request's body small and its answer quick.
INFOBIP_SEND_BATCH_SIZE = env.int("INFOBIP_SEND_BATCH_SIZE", default=100)
# A send task whose batch went through goes on with the next ready batch of the same connection (each
# conversation's next reply, the replies other tasks left), at most this many more batches and this many seconds,
# so a drained queue does not wait for each reply's own task; OUTBOX_DRAIN_MAX_BATCHES=0 turns it off.
OUTBOX_DRAIN_MAX_BATCHES = env.int("OUTBOX_DRAIN_MAX_BATCHES", default=20)
OUTBOX_DRAIN_SECONDS = env.float("OUTBOX_DRAIN_SECONDS", default=10.0)
# How long the outbox remembers in Redis that a message's attempt was recorded (accepted or failed), so the task of a
# reply a drain already sent ends without a query (inbox.outbox.attempt_done); after that such a task asks the
# database, as every task may. 0 turns the marker off.
OUTBOX_DONE_MARK_SECONDS = env.int("OUTBOX_DONE_MARK_SECONDS", default=900)
# Reconciliation (inbox.outbox.reconcile_accepted): a message still *accepted* after this long is settled from the
# provider's own records (Infobip's message logs); only within the window the provider keeps them.
RECONCILE_ACCEPTED_AFTER_SECONDS = env.int("RECONCILE_ACCEPTED_AFTER_SECONDS", default=1800)
RECONCILE_WINDOW_HOURS = env.int("RECONCILE_WINDOW_HOURS", default=48)
RECONCILE_BATCH = env.int("RECONCILE_BATCH", default=500)
# A reply held by its provider (a connection waiting for re-authorization) is asked about again after this long;
# reconnecting releases it at once.
OUTBOX_HELD_RECHECK_SECONDS = env.int("OUTBOX_HELD_RECHECK_SECONDS", default=300)

# Mail (the re-authorization notice to admins): Django's SMTP backend unless told otherwise; a file or console
# backend for development and the end-to-end stack (EMAIL_BACKEND + EMAIL_FILE_PATH).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(RUN_DIR / "mail"))
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="webmaster@localhost")

# TikTok's own API (tiktok_channel/direct/). Every value TikTok's sources disagree on is a setting, with the
# documented default (../shared/tiktok/README.md §11); an app's hosts are on its row (these are the defaults).
TIKTOK_DIRECT_API_BASE_URL = env("TIKTOK_DIRECT_API_BASE_URL", default="https://business-api.tiktok.com")
TIKTOK_DIRECT_AUTH_BASE_URL = env("TIKTOK_DIRECT_AUTH_BASE_URL", default="https://www.tiktok.com")
TIKTOK_DIRECT_API_PATH = env("TIKTOK_DIRECT_API_PATH", default="/open_api/v1.3")
TIKTOK_DIRECT_AUTHORIZE_PATH = env("TIKTOK_DIRECT_AUTHORIZE_PATH", default="/v2/auth/authorize/")
TIKTOK_DIRECT_SCOPES = env.list(
    "TIKTOK_DIRECT_SCOPES",
    default=[
        "user.info.basic",
        "user.info.username",
        "user.info.stats",
        "user.info.profile",
        "user.account.type",
        "user.insights",
        "message.list.read",
        "message.list.send",
        "message.list.manage",
        # Posts and engagement (not required: without them only the Posts page's sync is refused); comments on the
        # account's videos (optional: without them the account's comments stay out of the inbox).
        "video.list",
        "video.insights",
        "comment.list",
        "comment.list.manage",
    ],
)
# A connection missing one of these (users can grant a subset) is refused.
TIKTOK_DIRECT_REQUIRED_SCOPES = env.list(
    "TIKTOK_DIRECT_REQUIRED_SCOPES", default=["message.list.read", "message.list.send", "message.list.manage"]
)
# Used only when a token answer carries no lifetime: the shortest TikTok documents (2 h; refresh 30 days).
TIKTOK_DIRECT_ACCESS_TOKEN_DEFAULT_SECONDS = env.int("TIKTOK_DIRECT_ACCESS_TOKEN_DEFAULT_SECONDS", default=7200)
TIKTOK_DIRECT_REFRESH_TOKEN_DEFAULT_SECONDS = env.int(
    "TIKTOK_DIRECT_REFRESH_TOKEN_DEFAULT_SECONDS", default=30 * 24 * 3600
)
# Celery beat refreshes access tokens with less than this left.
TIKTOK_DIRECT_REFRESH_AHEAD_SECONDS = env.int("TIKTOK_DIRECT_REFRESH_AHEAD_SECONDS", default=900)
# A signed webhook older (or further in the future) than this is refused as a replay (TikTok names no number).
TIKTOK_DIRECT_WEBHOOK_MAX_AGE_SECONDS = env.int("TIKTOK_DIRECT_WEBHOOK_MAX_AGE_SECONDS", default=300)
# How long the "Connect" round trip through TikTok's consent page may take.
TIKTOK_DIRECT_OAUTH_STATE_MAX_AGE_SECONDS = env.int("TIKTOK_DIRECT_OAUTH_STATE_MAX_AGE_SECONDS", default=600)
# TikTok sends no Retry-After with "too many requests" (40100): wait at least this long before the next try.
TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS = env.int("TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS", default=60)
# Comment sync (beat): every N seconds per connected account with comment.list, its videos of the last DAYS (at
# most MAX_VIDEOS), at most MAX_PAGES pages of comments each, and at most MAX_CALLS API calls per run (the Accounts
# API allows 40 per minute per account, §9).
TIKTOK_COMMENT_SYNC_EVERY_SECONDS = env.float("TIKTOK_COMMENT_SYNC_EVERY_SECONDS", default=300.0)
TIKTOK_COMMENT_SYNC_DAYS = env.int("TIKTOK_COMMENT_SYNC_DAYS", default=30)
TIKTOK_COMMENT_SYNC_MAX_VIDEOS = env.int("TIKTOK_COMMENT_SYNC_MAX_VIDEOS", default=20)
TIKTOK_COMMENT_SYNC_MAX_PAGES = env.int("TIKTOK_COMMENT_SYNC_MAX_PAGES", default=5)
TIKTOK_COMMENT_SYNC_MAX_CALLS = env.int("TIKTOK_COMMENT_SYNC_MAX_CALLS", default=30)
TIKTOK_DIRECT_CONNECT_TIMEOUT = env.float("TIKTOK_DIRECT_CONNECT_TIMEOUT", default=5.0)
TIKTOK_DIRECT_READ_TIMEOUT = env.float("TIKTOK_DIRECT_READ_TIMEOUT", default=15.0)
# Images the backend uploads to TikTok (JPG/PNG up to 3 MB by default; some sources say 20 MB).
TIKTOK_DIRECT_IMAGE_MAX_BYTES = env.int("TIKTOK_DIRECT_IMAGE_MAX_BYTES", default=3 * 1024 * 1024)

# Posts and engagement (tiktok_channel/direct/engagement/): Celery beat syncs every connected account this often;
# a sync reads at most this many pages of 20 videos (TikTok's maximum page, §6.1). One SDK spells the list path
# /business/videos/list/ (§6.1): a setting.
TIKTOK_ENGAGEMENT_SYNC_EVERY_SECONDS = env.float("TIKTOK_ENGAGEMENT_SYNC_EVERY_SECONDS", default=3600.0)
TIKTOK_ENGAGEMENT_MAX_PAGES = env.int("TIKTOK_ENGAGEMENT_MAX_PAGES", default=50)
TIKTOK_ENGAGEMENT_PAGE_SIZE = env.int("TIKTOK_ENGAGEMENT_PAGE_SIZE", default=20)
TIKTOK_ENGAGEMENT_VIDEO_LIST_PATH = env("TIKTOK_ENGAGEMENT_VIDEO_LIST_PATH", default="/business/video/list/")
# A throttled or failed sync is tried again with exponential backoff (at least TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS
# after "too many requests"), at most this many times; the next beat starts afresh.
TIKTOK_ENGAGEMENT_RETRIES = env.int("TIKTOK_ENGAGEMENT_RETRIES", default=5)
TIKTOK_ENGAGEMENT_BACKOFF_SECONDS = env.float("TIKTOK_ENGAGEMENT_BACKOFF_SECONDS", default=30.0)
# TikTok's webhook event names for a post becoming public / no longer public and for a user removing the app's
# authorization (§4.5 names the post events of the developer portal; the Business API's are not documented).
TIKTOK_DIRECT_POST_PUBLISHED_EVENTS = env.list(
    "TIKTOK_DIRECT_POST_PUBLISHED_EVENTS", default=["post.publish.publicly_available"]
)
TIKTOK_DIRECT_POST_REMOVED_EVENTS = env.list(
    "TIKTOK_DIRECT_POST_REMOVED_EVENTS", default=["post.publish.no_longer_publicaly_available"]
)
TIKTOK_DIRECT_AUTHORIZATION_REMOVED_EVENTS = env.list(
    "TIKTOK_DIRECT_AUTHORIZATION_REMOVED_EVENTS", default=["authorization.removed"]
)
# Publishing (tiktok_channel/direct/publishing/): TikTok's Content Posting API (../shared/tiktok/README.md §4).
# Its host; empty: https://open.tiktokapis.com for an app on TikTok's own hosts, else the app's API base URL (the
# local sandbox serves both hosts).
TIKTOK_CONTENT_API_BASE_URL = env("TIKTOK_CONTENT_API_BASE_URL", default="")
# §4.3: chunks of 5-64 MB (5 MiB and 64,000,000 bytes: safe whichever "MB" TikTok means), the last up to 128 MB.
TIKTOK_UPLOAD_CHUNK_BYTES = env.int("TIKTOK_UPLOAD_CHUNK_BYTES", default=10_000_000)
TIKTOK_UPLOAD_MIN_CHUNK_BYTES = env.int("TIKTOK_UPLOAD_MIN_CHUNK_BYTES", default=5 * 1024 * 1024)
TIKTOK_UPLOAD_MAX_CHUNK_BYTES = env.int("TIKTOK_UPLOAD_MAX_CHUNK_BYTES", default=64_000_000)
TIKTOK_UPLOAD_READ_TIMEOUT = env.float("TIKTOK_UPLOAD_READ_TIMEOUT", default=120.0)
# One chunk is tried this many times in a run (5xx, no answer) before the run gives up; runs are budgeted too.
TIKTOK_UPLOAD_CHUNK_TRIES = env.int("TIKTOK_UPLOAD_CHUNK_TRIES", default=3)
TIKTOK_UPLOAD_MAX_RUNS = env.int("TIKTOK_UPLOAD_MAX_RUNS", default=6)
# A worker owns an upload for this long after its last chunk; then the sweeper hands it to another worker.
TIKTOK_UPLOAD_LEASE_SECONDS = env.int("TIKTOK_UPLOAD_LEASE_SECONDS", default=300)
# §4.3 limits, checked before anything is uploaded.
TIKTOK_POST_VIDEO_MAX_BYTES = env.int("TIKTOK_POST_VIDEO_MAX_BYTES", default=4 * 1024 * 1024 * 1024)
TIKTOK_POST_VIDEO_MAX_SECONDS = env.int("TIKTOK_POST_VIDEO_MAX_SECONDS", default=600)
TIKTOK_POST_PHOTO_MAX_BYTES = env.int("TIKTOK_POST_PHOTO_MAX_BYTES", default=20 * 1024 * 1024)
TIKTOK_POST_PHOTO_MAX_COUNT = env.int("TIKTOK_POST_PHOTO_MAX_COUNT", default=35)
# §4.5: status polling with exponential backoff (and jitter) from FIRST to MAX seconds, given up after GIVE_UP.
TIKTOK_POST_STATUS_FIRST_POLL_SECONDS = env.float("TIKTOK_POST_STATUS_FIRST_POLL_SECONDS", default=5.0)
TIKTOK_POST_STATUS_MAX_POLL_SECONDS = env.float("TIKTOK_POST_STATUS_MAX_POLL_SECONDS", default=600.0)
TIKTOK_POST_STATUS_GIVE_UP_SECONDS = env.int("TIKTOK_POST_STATUS_GIVE_UP_SECONDS", default=48 * 3600)
# TikTok ads (Marketing API, tiktok_channel/ads/): the Business API app of the advertiser consent (§2.2 of the notes),
# its hosts (point them at the Marketing sandbox in development) and the customer-file normalization switches (§11).
TIKTOK_MARKETING_API_BASE = env("TIKTOK_MARKETING_API_BASE", default="https://business-api.tiktok.com/open_api/v1.3")
TIKTOK_MARKETING_AUTH_URL = env("TIKTOK_MARKETING_AUTH_URL", default="https://business-api.tiktok.com/portal/auth")
TIKTOK_MARKETING_APP_ID = env("TIKTOK_MARKETING_APP_ID", default="")
TIKTOK_MARKETING_APP_SECRET = env("TIKTOK_MARKETING_APP_SECRET", default="")
TIKTOK_MARKETING_CONNECT_TIMEOUT = env.float("TIKTOK_MARKETING_CONNECT_TIMEOUT", default=5.0)
TIKTOK_MARKETING_READ_TIMEOUT = env.float("TIKTOK_MARKETING_READ_TIMEOUT", default=30.0)
# 40100 "too frequent": a per-minute excess clears after about 5 minutes (§9); retries back off from this.
TIKTOK_MARKETING_THROTTLE_WAIT_SECONDS = env.int("TIKTOK_MARKETING_THROTTLE_WAIT_SECONDS", default=60)
TIKTOK_MARKETING_MAX_RETRIES = env.int("TIKTOK_MARKETING_MAX_RETRIES", default=6)
# Days of metrics each beat pulls again (TikTok restates recent days).
TIKTOK_ADS_METRICS_DAYS = env.int("TIKTOK_ADS_METRICS_DAYS", default=7)
TIKTOK_ADS_EMAIL_STRIP_DOTS = env.bool("TIKTOK_ADS_EMAIL_STRIP_DOTS", default=False)
# Added to phone numbers written without one (digits only, e.g. 44); empty: such rows are counted as bad.
TIKTOK_ADS_DEFAULT_COUNTRY_CODE = env("TIKTOK_ADS_DEFAULT_COUNTRY_CODE", default="")
TIKTOK_ADS_AUDIENCE_RETENTION_DAYS = env.int("TIKTOK_ADS_AUDIENCE_RETENTION_DAYS", default=180)
TIKTOK_ADS_AUDIENCE_MAX_BYTES = env.int("TIKTOK_ADS_AUDIENCE_MAX_BYTES", default=50 * 1024 * 1024)
# Subscription API callbacks may be unsigned (§10): with a secret set, a TikTok-Signature is required.
TIKTOK_ADS_WEBHOOK_REQUIRE_SIGNATURE = env.bool("TIKTOK_ADS_WEBHOOK_REQUIRE_SIGNATURE", default=False)
# The secret last segment of the review webhook's URL (/webhooks/tiktok-ads/<token>/); empty: the URL is closed.
TIKTOK_ADS_WEBHOOK_PATH_TOKEN = env("TIKTOK_ADS_WEBHOOK_PATH_TOKEN", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"mask_webhook_tokens": {"()": "config.log_filters.MaskWebhookTokens"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_webhook_tokens"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Timestamps of a webhook batch's legs and of live publishes (bench/README.md "Ticks"): DEBUG turns them on.
        "inbox.trace": {"level": env("TRACE_LOG_LEVEL", default="WARNING")},
        # django.request writes request paths: webhook tokens are masked before any handler sees the record
        # (django.server and uvicorn.access get the same filter in config/log_filters.py: install()).
        "django.request": {"filters": ["mask_webhook_tokens"]},
    },
}
