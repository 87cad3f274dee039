"""Settings, read from the environment.

Every value comes from an environment variable with a typed helper that names the variable
when its value is wrong. `var/local.env` (written by `make setup` for the embedded servers and a
generated secret key) fills in variables that the environment does not set.
"""

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COIGP_VAR_DIR", BASE_DIR / "var"))


def _read_local_env(path):
    if not path.exists():
        return
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ImproperlyConfigured(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        os.environ.setdefault(key.strip(), value.strip())


_read_local_env(VAR_DIR / "local.env")


def env_str(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Environment variable {name} is required (run `make setup`).")
    return value


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no).")


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_list(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url):
    """postgresql://user:password@host:port/name, or a socket directory as ?host=/path."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgresql:// URL, got scheme {parsed.scheme!r}.")
    query = parse_qs(parsed.query)
    name = unquote(parsed.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL names no database (postgresql://…/NAME).")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parsed.username or "postgres"),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": query.get("host", [unquote(parsed.hostname or "")])[0],
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": query.get("test_name", [f"test_{name}"])[0]},
    }


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "annotation",
    "review",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "review.security.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "coigp_web.urls"
WSGI_APPLICATION = "coigp_web.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(env_str("DATABASE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
# One cache for every web and worker process (counts that several gunicorn workers show must agree), in
# the broker's Redis under its own key prefix. It shares that database with the task queue: never call
# cache.clear(), which is FLUSHDB there.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "coigp",
    }
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dataset-list"
LOGOUT_REDIRECT_URL = "login"

# Failed-login throttling: five failures lock the username+address pair for 15 minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS in production (all on in docker-compose.yml): redirect plain HTTP, and tell browsers to use
# HTTPS only (HSTS) for this many seconds. Behind a TLS-terminating proxy, DJANGO_TRUST_X_FORWARDED_PROTO
# makes Django believe its X-Forwarded-Proto header (set it only when the proxy overwrites that header).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# System checks an operator decided against on purpose (e.g. security.W021: HSTS preload is a commitment
# to the browsers' list for a whole domain, which only its owner can make).
SILENCED_SYSTEM_CHECKS = env_list("DJANGO_SILENCED_SYSTEM_CHECKS", [])
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
NODE_MODULES = BASE_DIR / "node_modules"
# Front-end libraries come from npm (package.json); only their distributed files are served.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/chartjs", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/katex", NODE_MODULES / "katex" / "dist"),
    ("vendor/highlight", NODE_MODULES / "@highlightjs" / "cdn-assets"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Every upload streams to a temporary file under MEDIA_ROOT (never held in memory), and one
# over IMPORT_MAX_UPLOAD_BYTES is stopped while it streams (annotation/uploads.py).
FILE_UPLOAD_HANDLERS = ["annotation.uploads.LimitedTemporaryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # form fields other than files only
FILE_UPLOAD_TEMP_DIR = str(MEDIA_ROOT / "imports" / "incoming")
# Django's system checks refuse a temporary directory that does not exist, and a fresh checkout
# (or a new media volume) has none yet.
os.makedirs(FILE_UPLOAD_TEMP_DIR, exist_ok=True)
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 5 * 1024**3)
IMPORT_MAX_FIELD_CHARS = env_int("IMPORT_MAX_FIELD_CHARS", 200_000)
# What a hostile file may make the importer hold or do (annotation/ingest/readers.py). A line (a JSONL
# line, a CSV record, a JSON array element) longer than IMPORT_MAX_LINE_BYTES is one rejected row and
# is skipped without being held; 64 MiB is far above any real record (a field is at most
# IMPORT_MAX_FIELD_CHARS characters). A .gz/.zst file stops being read once its content passes
# IMPORT_MAX_DECOMPRESSED_BYTES or IMPORT_MAX_DECOMPRESSION_RATIO times its own size (counted from
# 1 MiB for smaller files): Chinese preference data compresses 2.5-3.5 times (the sample data, gzip -9
# and zstd -19), a file full of repeats perhaps 20 times, a decompression bomb 1,000 times and more.
IMPORT_MAX_LINE_BYTES = env_int("IMPORT_MAX_LINE_BYTES", 64 * 1024**2)
IMPORT_MAX_DECOMPRESSED_BYTES = env_int("IMPORT_MAX_DECOMPRESSED_BYTES", 64 * 1024**3)
IMPORT_MAX_DECOMPRESSION_RATIO = env_int("IMPORT_MAX_DECOMPRESSION_RATIO", 100)
# A job stores its first JOB_MAX_STORED_ERRORS bad rows (or failed items) and counts the rest, so a
# file of two million bad lines leaves a usable errors page and CSV, not 400 MB of error rows.
JOB_MAX_STORED_ERRORS = env_int("JOB_MAX_STORED_ERRORS", 10_000)
# Hugging Face Hub imports: the Hub's address, and a token read from the environment when a
# dataset needs one (never stored).
HF_ENDPOINT = env_str("HF_ENDPOINT", "https://huggingface.co").rstrip("/")

# Celery: JSON only; a task is acknowledged after it ran, and requeued if its worker died.
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "coigp")
# Jobs are long; the job row's lease (JOB_LEASE_SECONDS) detects dead workers, not the broker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600)}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-jobs": {"task": "annotation.tasks.requeue_stale_jobs", "schedule": 30.0},
    # Dashboards and stored rule lists made stale by a finished job are recomputed by a dashboard_refresh
    # job (review/dashboards.py) and a quality_counts job (review/quality_rules.py).
    "refresh-stale-dashboards": {"task": "review.tasks.refresh_stale_dashboards", "schedule": 60.0},
    "recount-stale-quality": {"task": "review.tasks.recount_stale_quality", "schedule": 60.0},
}

# A running job renews its lease at every chunk; one silent for longer is taken over.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 120)

# The review queue holds a pair handed to a reviewer this long; after that (a closed tab) it goes to another.
REVIEW_LEASE_SECONDS = env_int("REVIEW_LEASE_SECONDS", 15 * 60)

# LLM judges: transient errors (429, 5xx, timeouts, dropped connections) are retried this many
# times with exponential backoff and full jitter, starting at JUDGE_BACKOFF_BASE_MS.
JUDGE_MAX_RETRIES = env_int("JUDGE_MAX_RETRIES", 6)
JUDGE_BACKOFF_BASE_MS = env_int("JUDGE_BACKOFF_BASE_MS", 500)
JUDGE_BACKOFF_MAX_MS = env_int("JUDGE_BACKOFF_MAX_MS", 60_000)

# Which environment variables a judge or reward endpoint may name as its API key (it is sent as a Bearer
# token to the URL an admin types): names starting with one of these prefixes, or listed exactly.
PROVIDER_KEY_ENV_PREFIXES = env_list("COIGP_PROVIDER_KEY_ENV_PREFIXES", ["COIGP_JUDGE_KEY_", "COIGP_REWARD_KEY_"])
PROVIDER_KEY_ENV_ALLOWED = env_list("COIGP_PROVIDER_KEY_ENV_ALLOWED", [])
if not PROVIDER_KEY_ENV_PREFIXES or not all(len(prefix) >= 4 for prefix in PROVIDER_KEY_ENV_PREFIXES):
    raise ImproperlyConfigured("COIGP_PROVIDER_KEY_ENV_PREFIXES must list prefixes of at least 4 characters "
                               "(an empty prefix would let a judge send any secret of the server).")

# The REST API (api/): personal tokens (or the browser's session, CSRF-checked), the same access checks as
# the pages, and calls per user counted in the Redis cache: API_THROTTLE_RATE per token's user,
# API_ANON_THROTTLE_RATE per address without one ("N/second|minute|hour|day").
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "600/minute")
API_ANON_THROTTLE_RATE = env_str("API_ANON_THROTTLE_RATE", "60/minute")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.TokenAuthentication",
                                       "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.authentication.UserRateThrottle", "api.authentication.AnonRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser", "rest_framework.parsers.MultiPartParser",
                               "rest_framework.parsers.FormParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "coigp-web API",
    "DESCRIPTION": "Import, score, build, filter, review, decide and export LLM preference pairs. Every call "
                   "needs `Authorization: Bearer <personal token>` and is checked against the token user's "
                   "dataset roles, as the pages are.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for the domains, whether a form calls its field domain or domains (the schema lists their values).
    "ENUM_NAME_OVERRIDES": {"DomainEnum": "annotation.models.Domain.values"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
