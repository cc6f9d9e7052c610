"""Settings, 12-factor: every value has a safe one-machine default and an environment variable.

With nothing set, the platform runs on SQLite, Celery's filesystem transport and the in-memory
Channels layer, all under ``var/``. ``DATABASE_URL`` switches to PostgreSQL and ``REDIS_URL`` to
Redis for the Celery transport and the Channels layer.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DJAFKA_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean from the environment: 1/true/yes/on, case-insensitive."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated list from the environment."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """The SECRET_KEY from the environment, or one generated once and kept under var/."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # O_EXCL: two processes starting together must not each write their own key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJAFKA_DEBUG")
ALLOWED_HOSTS = env_list("DJAFKA_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJAFKA_CSRF_TRUSTED_ORIGINS", "")

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
    "djafka",
    "brokers",
    "streams",
    "connectors",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "djafka.urls"

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

WSGI_APPLICATION = "djafka.wsgi.application"
ASGI_APPLICATION = "djafka.asgi.application"

# --- Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'djafka.sqlite3'}"),
        conn_max_age=int(os.environ.get("DJAFKA_DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, broker nodes and the controller share one file: WAL lets readers run beside the
    # writer, IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests whose server threads share the database need a file (SQLite's shared in-memory
    # cache locks whole tables); one per test process, so parallel runs never meet.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-djafka-{os.getpid()}.sqlite3")}

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

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (tests, a first run) whitenoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "admin:login"

# --- Redis: the Celery transport and the Channels layer, when REDIS_URL is set.
REDIS_URL = os.environ.get("REDIS_URL", "")

# --- Celery: filesystem transport under var/ unless REDIS_URL is set.
CELERY_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    for sub in ("queue", "processed", "results", "control"):
        (CELERY_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DIR / "queue"),
        "data_folder_out": str(CELERY_DIR / "queue"),
        "processed_folder": str(CELERY_DIR / "processed"),
        "control_folder": str(CELERY_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{CELERY_DIR / 'results'}"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Channels: in-memory layer for one process, Redis for many.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Djafka itself.
DJAFKA_DATA_DIR = Path(os.environ.get("DJAFKA_DATA_DIR", VAR_DIR / "data")).resolve()
# A key is "<prefix>.<secret>"; Kafka clients send the prefix as SASL/PLAIN username.
DJAFKA_API_KEY_PREFIX = "dfk_"
# How often an API key's last-used time is written at most, to keep reads free of writes.
DJAFKA_KEY_LAST_USED_RESOLUTION_S = int(os.environ.get("DJAFKA_KEY_LAST_USED_RESOLUTION_S", "60"))
# How long a process trusts a key it authenticated (0: ask the database every time). A key
# revoked elsewhere stops working within this time.
DJAFKA_API_KEY_CACHE_S = float(os.environ.get("DJAFKA_API_KEY_CACHE_S", "5"))
# Kafka listeners ask for SASL/PLAIN with a tenant's API key. For local use only, naming a
# tenant here opens them: every connection then acts for that tenant without credentials.
DJAFKA_KAFKA_OPEN_TENANT = os.environ.get("DJAFKA_KAFKA_OPEN_TENANT", "")
# How often broker nodes apply retention and compaction (Kafka's
# log.retention.check.interval.ms is 5 minutes).
DJAFKA_LOG_MAINTENANCE_INTERVAL_S = float(
    os.environ.get("DJAFKA_LOG_MAINTENANCE_INTERVAL_S", "300")
)
# Committed offsets of a group Empty for this long (of a standalone group: committed this long
# ago) expire, checked this often by each group's coordinator (Kafka's offsets.retention.minutes,
# 7 days, and offsets.retention.check.interval.ms, 10 minutes; KIP-211).
DJAFKA_OFFSETS_RETENTION_MINUTES = float(
    os.environ.get("DJAFKA_OFFSETS_RETENTION_MINUTES", "10080")
)
DJAFKA_OFFSETS_RETENTION_CHECK_INTERVAL_MS = int(
    os.environ.get("DJAFKA_OFFSETS_RETENTION_CHECK_INTERVAL_MS", "600000")
)
DJAFKA_AUTO_CREATE_TOPICS = env_bool("DJAFKA_AUTO_CREATE_TOPICS", True)
DJAFKA_MAX_PARTITIONS_PER_TOPIC = int(os.environ.get("DJAFKA_MAX_PARTITIONS_PER_TOPIC", "1000"))

# --- REST API.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "djafka.authentication.ApiKeyAuthentication",
        "djafka.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["djafka.permissions.IsTenantMember"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "djafka.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Djafka API",
    "DESCRIPTION": (
        "Topics, records and consumer groups of one tenant. Authenticate with "
        "`Authorization: Bearer <api key>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Keys and values of every record endpoint share one set of formats.
    "ENUM_NAME_OVERRIDES": {"RecordFormatEnum": "brokers.api.record_format.FORMATS"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJAFKA_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Controller: Celery beat sends a tick a second to the `controller` queue.
CELERY_BEAT_SCHEDULE = {
    "controller-tick": {
        "task": "brokers.controller_tick",
        "schedule": float(os.environ.get("DJAFKA_CONTROLLER_TICK_S", "1")),
        "options": {"queue": "controller", "expires": 5},
    },
}
CELERY_TASK_ROUTES = {"brokers.controller_tick": {"queue": "controller"}}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- REST data plane: the web tier produces and reads records over the Kafka protocol.
# Where the web tier reaches broker nodes ("host:port,..."); unset: the live Broker rows.
DJAFKA_KAFKA_BOOTSTRAP = os.environ.get("DJAFKA_KAFKA_BOOTSTRAP", "")
DJAFKA_REST_MAX_RECORDS_PER_REQUEST = int(
    os.environ.get("DJAFKA_REST_MAX_RECORDS_PER_REQUEST", "10000")
)
DJAFKA_REST_MAX_REQUEST_BYTES = int(
    os.environ.get("DJAFKA_REST_MAX_REQUEST_BYTES", str(16 * 1024 * 1024))
)
# Threads serving the web tier's HTTP requests (djafka/asgi_handler.py): a request holds one
# while its view runs, a REST long poll for its wait; requests beyond them queue.
DJAFKA_WEB_THREADS = int(os.environ.get("DJAFKA_WEB_THREADS", "256"))
# Of those, how many may wait in REST long polls at once; past it a long poll answers at once
# (brokers/api/long_polls.py), so waiting readers never hold every thread.
DJAFKA_WEB_LONG_POLLS = int(
    os.environ.get("DJAFKA_WEB_LONG_POLLS", str(max(1, DJAFKA_WEB_THREADS // 2)))
)
DJAFKA_REST_PRODUCE_TIMEOUT_MS = int(os.environ.get("DJAFKA_REST_PRODUCE_TIMEOUT_MS", "30000"))
# How long a web process trusts what it read of a topic for producing (0: read it every time).
DJAFKA_REST_TOPIC_CACHE_S = float(os.environ.get("DJAFKA_REST_TOPIC_CACHE_S", "1"))
DJAFKA_REST_MAX_POLL_TIMEOUT_MS = int(os.environ.get("DJAFKA_REST_MAX_POLL_TIMEOUT_MS", "30000"))
DJAFKA_REST_METADATA_TIMEOUT_MS = int(os.environ.get("DJAFKA_REST_METADATA_TIMEOUT_MS", "10000"))

# --- REST members of consumer groups: one Kafka consumer each, held by the web process.
# The coordinator's group.min/max.session.timeout.ms bound what a broker accepts; the web
# tier's own bounds keep a forgotten member from holding a consumer for long.
DJAFKA_REST_MEMBER_MIN_SESSION_TIMEOUT_MS = int(
    os.environ.get("DJAFKA_REST_MEMBER_MIN_SESSION_TIMEOUT_MS", "6000")
)
DJAFKA_REST_MEMBER_MAX_SESSION_TIMEOUT_MS = int(
    os.environ.get("DJAFKA_REST_MEMBER_MAX_SESSION_TIMEOUT_MS", "300000")
)
DJAFKA_REST_MAX_MEMBERS_PER_TENANT = int(
    os.environ.get("DJAFKA_REST_MAX_MEMBERS_PER_TENANT", "100")
)
# How often the keeper thread expires silent members and serves the others' rebalances.
DJAFKA_REST_MEMBER_KEEPER_INTERVAL_MS = int(
    os.environ.get("DJAFKA_REST_MEMBER_KEEPER_INTERVAL_MS", "100")
)
# Records a member may hold between its client's polls, and its consumer's prefetch buffer.
DJAFKA_REST_MEMBER_MAX_HELD_RECORDS = int(
    os.environ.get("DJAFKA_REST_MEMBER_MAX_HELD_RECORDS", "5000")
)
DJAFKA_REST_MEMBER_PREFETCH_KBYTES = int(
    os.environ.get("DJAFKA_REST_MEMBER_PREFETCH_KBYTES", "4096")
)
