"""Settings, read from environment variables (12-factor).

With no environment variable set this is the *embedded default*: SQLite under ``var/``, a
Celery broker on the local filesystem (no service to install), a generated development secret
key persisted in ``var/``. Environment variables switch each part to production:

- ``DATABASE_URL``       PostgreSQL (``postgres://user:pass@host:5432/name``)
- ``CELERY_BROKER_URL``  Redis (``redis://host:6379/0``) with real workers and one beat
- ``CACHE_URL``          Redis (``redis://host:6379/1``), the cache the rate limits count in
- ``SBT_ENV=production`` production security settings; needs ``DJANGO_SECRET_KEY``,
                          ``DJANGO_ALLOWED_HOSTS``, ``DATABASE_URL`` and ``OIDC_RSA_PRIVATE_KEY``

docs/operations.md lists every variable. One module on purpose, though long: every setting
and the environment variable behind it can be read top to bottom in one place, as Django's own
settings are.
"""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from sbt_site.conf import DEFAULTS as SBT_DEFAULTS
from sbt_site.conf import EVENT_NAME_STYLES, SCOPE_DESCRIPTIONS

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_lockout_parameters(name: str, default: str) -> list:
    """django-axes' AXES_LOCKOUT_PARAMETERS from a comma-separated list of counters, each
    ``username``, ``ip_address`` or both joined by ``+`` (one counter per pair)."""
    parameters = []
    for item in (os.environ.get(name) or default).split(","):
        names = [part.strip() for part in item.split("+")]
        if not set(names) <= {"username", "ip_address"}:
            raise ImproperlyConfigured(f"{name}: {item!r} is not username, ip_address or username+ip_address")
        parameters.append(names[0] if len(names) == 1 else names)
    return parameters


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate (``600/min``: a count per second, minute, hour or day); set but
    empty, none (the limit is off)."""
    value = os.environ.get(name, default).strip()
    if value and not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name} must be a count per s, min, hour or day (e.g. 600/min), not {value!r}")
    return value


SBT_ENV = os.environ.get("SBT_ENV", "development")
if SBT_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"SBT_ENV must be 'development' or 'production', not {SBT_ENV!r}")
PRODUCTION = SBT_ENV == "production"

VAR_DIR = Path(os.environ.get("SBT_VAR_DIR", BASE_DIR / "var"))
# Owner-only: the embedded default keeps its database, secret key and OIDC signing key here.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if not PRODUCTION and "SBT_VAR_DIR" not in os.environ:
    VAR_DIR.chmod(0o700)  # var/ made by an earlier version is 0755; a chosen SBT_VAR_DIR is the operator's


def _development_secret(path: Path, length: int = 50) -> str:
    """A random secret generated once and persisted, for the embedded default only."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(length)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


if PRODUCTION:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (at least 50 random characters) in production")
else:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _development_secret(VAR_DIR / "secret_key")

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set in production (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# The public base URL of this control plane, used in tokens (issuer) and in /auth-info.
SBT_PUBLIC_URL = os.environ.get("SBT_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "sbt_site.console.apps.ConsoleAdminConfig",  # django.contrib.admin with the operator console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "sbt_site.oauth_app.OAuthTokensConfig",  # oauth2_provider, named "OAuth tokens" in the admin
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "sbt_site",
    "accounts",
    "tenants",
    "events",
    "metering",
    "billing",
    "provisioning",
    "auditlog",
    "audit",
]

MIDDLEWARE = [
    # First: its request id and latency cover everything the others do (sbt_site/middleware.py).
    "sbt_site.middleware.RequestObservabilityMiddleware",
    # /healthz and /readyz whatever the Host header (a probe names the pod's address): before
    # CommonMiddleware, which refuses a Host outside ALLOWED_HOSTS (sbt_site/health.py).
    "sbt_site.health.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # the audit log's actor: the request's caller, as known when each change is saved
    "audit.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login that axes refused into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sbt_site.urls"
WSGI_APPLICATION = "sbt_site.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_health_checks=True)}
    # On by default (issue 18): idle threads hold no connection and a process never exceeds its
    # pool; DATABASE_POOL=false goes back to one persistent connection per thread
    # (docs/operations.md "Database connections"). PostgreSQL only: Django has no pool for
    # SQLite, where the embedded default opens its file per request.
    DATABASE_POOL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
        "DATABASE_POOL", True
    )
    if DATABASE_POOL:
        # Each process borrows a connection per request from its own pool (psycopg_pool) and gives
        # it back when the request ends: idle threads hold none, a process never opens more than
        # max_size, a connection found dead is discarded, and a request that waits past timeout
        # seconds for one answers 503 (sbt_site/api/exceptions.py). Sizing: docs/operations.md.
        # Django refuses persistent connections with a pool: the pool is what persists.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"] = {
            **DATABASES["default"].get("OPTIONS", {}),
            "pool": {
                "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1),
                "max_size": env_int("DATABASE_POOL_MAX_SIZE", 8),
                "timeout": env_int("DATABASE_POOL_TIMEOUT", 3),
                # connections above min_size are closed after this many idle seconds
                "max_idle": env_int("DATABASE_POOL_MAX_IDLE", 60),
                # A failed reconnection is retried with a doubling delay (1, 2, 4 ... s) for this
                # long, then dropped, and the next request that needs a connection starts over at
                # once. psycopg_pool's default (300 s) kept 503s coming for up to the outage's own
                # length again after PostgreSQL was back (bench/faults.py, docs/reliability.md).
                "reconnect_timeout": env_int("DATABASE_POOL_RECONNECT_TIMEOUT", 5),
            },
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
    # Behind a pooler in transaction mode (PgBouncer pool_mode=transaction), consecutive
    # transactions of one client may run on different server sessions: nothing may outlive a
    # transaction there, so no cursor WITH HOLD (QuerySet.iterator() outside atomic) and, by
    # default, no prepared statements (docs/operations.md "PgBouncer").
    DATABASE_TRANSACTION_POOLING = env_bool("DATABASE_TRANSACTION_POOLING", False)
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASE_TRANSACTION_POOLING
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
        "DATABASE_PREPARED_STATEMENTS", not DATABASE_TRANSACTION_POOLING
    ):
        # The few statements of the hot path (sbt_site/db.py execute_prepared, the one path that
        # prepares) are prepared once per connection and planned once (generic plan); Django's
        # own queries bind client-side and are never prepared. Django's default prepare_threshold
        # (None) would turn preparing off altogether. Behind PgBouncer in transaction mode older
        # than 1.21, set DATABASE_TRANSACTION_POOLING=true, which turns them off (docs/operations.md).
        DATABASES["default"]["OPTIONS"] = {
            "prepare_threshold": 5,
            "options": "-c plan_cache_mode=force_generic_plan",
            **DATABASES["default"].get("OPTIONS", {}),
        }
elif PRODUCTION:
    raise ImproperlyConfigured("DATABASE_URL must be set in production (postgres://user:password@host:5432/name)")
else:
    # SQLite gives its -wal and -shm files the database file's mode, so 0600 here covers them too.
    (VAR_DIR / "db.sqlite3").touch(mode=0o600)
    (VAR_DIR / "db.sqlite3").chmod(0o600)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The web process and the Celery worker share the file: wait for locks instead of
            # failing, and take the write lock at BEGIN so two writers never deadlock.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------------------------
# What the API's rate limit and metering's ingestion quota count in (sbt_site/ratelimits.py): it
# must be shared by every process, so production sets CACHE_URL to Redis (a system check warns
# otherwise). Unset, each process counts in its own memory: right for the embedded default's one
# server process and for the tests. A Redis that does not answer within a second is skipped
# (the limits let requests through) rather than holding every request.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be a Redis URL (redis://host:6379/1), not {CACHE_URL!r}")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
# django-axes first: it refuses a locked-out login before any password is checked. Then Django's
# ModelBackend, also refusing users of an inactive tenant (accounts/backends.py); ModelBackend
# itself must not be listed, or it would let those users in after ours refused them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.ActiveTenantModelBackend",
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
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Request bodies larger than this are refused with 413 (API) or 400 (forms).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("SBT_MAX_BODY_BYTES", 1_000_000)

# --- Security (production) ------------------------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /healthz and /readyz are probed over plain HTTP by load balancers, /metrics scraped by Prometheus.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Throttling and lockout (django-axes; docs/operations.md "Throttling and lockout") ----------
# Failed logins (/admin/login/, /o/login/) and failed client authentications (/o/token/,
# /o/revoke_token/, /o/introspect/; accounts/lockout.py) count per account or client and per
# address (SBT_LOCKOUT_PARAMETERS); at the limit, that account or address is refused for the
# cool-off, even with the right password or secret, and without checking it. Attempts are rows in
# the database: the handler works on SQLite and PostgreSQL alike, is shared by every process,
# survives restarts, and is what axes' admin pages and axes_reset* commands read and clear.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("SBT_LOCKOUT_FAILURES", 10)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("SBT_LOCKOUT_COOLOFF_SECONDS", 15 * 60))
AXES_LOCKOUT_PARAMETERS = env_lockout_parameters("SBT_LOCKOUT_PARAMETERS", "username,ip_address")
# The cool-off runs from the failure that locked: refused attempts during it are not counted, as
# the token endpoint does not count them either (it answers before checking the secret).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Kept out of the failed attempts' stored form data (axes masks "password" by itself).
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
]

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["sbt_site.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["sbt_site.api.permissions.HasOperationScope"],
    "DEFAULT_PARSER_CLASSES": ["sbt_site.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "sbt_site.api.exceptions.exception_handler",
    # Requests per OAuth client (SBT["API_RATE_LIMIT"]); POST /usage's fast path applies it too.
    "DEFAULT_THROTTLE_CLASSES": ["sbt_site.api.throttling.ClientRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "sbt_site.api.schema.ScopedAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_VERSIONING_CLASS": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SBT control plane API",
    "DESCRIPTION": (
        "Wire-compatible with the SaaS Builder Toolkit control-plane API. Every route under "
        "/api/v1/ needs an OAuth2 bearer token (client credentials or authorization code + PKCE "
        "from /o/token/) carrying the scope listed on the route."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}


# --- OAuth2 (django-oauth-toolkit) ------------------------------------------------------------
def _oidc_signing_key() -> str:
    """The RSA private key (PEM) that signs access tokens and ID tokens.

    Production takes it from OIDC_RSA_PRIVATE_KEY, so every web process signs with the same key
    and a restart does not invalidate issued tokens. The embedded default generates one once and
    keeps it in var/ (mode 0600).
    """
    pem = os.environ.get("OIDC_RSA_PRIVATE_KEY", "").strip()
    if pem:
        return pem + "\n"
    if PRODUCTION:
        raise ImproperlyConfigured(
            "OIDC_RSA_PRIVATE_KEY must be set in production (an RSA private key in PEM, e.g. "
            "`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`)"
        )
    path = VAR_DIR / "oidc_rsa_private_key.pem"
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.touch(mode=0o600)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path.read_text()


OAUTH2_PROVIDER_APPLICATION_MODEL = "accounts.OAuthApplication"
# DOT's own model, named so that migrations can depend on it (accounts.AuthorizationCodeExchange).
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER = {
    "SCOPES": SCOPE_DESCRIPTIONS,
    "SCOPES_BACKEND_CLASS": "accounts.scopes.ApplicationScopes",
    "APPLICATION_ADMIN_CLASS": "accounts.admin.OAuthApplicationAdmin",
    "ACCESS_TOKEN_ADMIN_CLASS": "accounts.admin.AccessTokenAdmin",
    "REFRESH_TOKEN_ADMIN_CLASS": "accounts.admin.RefreshTokenAdmin",
    "GRANT_ADMIN_CLASS": "accounts.admin.GrantAdmin",
    "ID_TOKEN_ADMIN_CLASS": "accounts.admin.IDTokenAdmin",
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("SBT_ACCESS_TOKEN_SECONDS", 3600),
    # Access tokens are RS256-signed JWTs (RFC 9068) that an application plane can verify offline;
    # refresh tokens stay opaque random strings (oauthlib would otherwise reuse the JWT generator).
    "ACCESS_TOKEN_GENERATOR": "accounts.tokens.signed_access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "OAUTH2_VALIDATOR_CLASS": "accounts.tokens.SbtOAuth2Validator",
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": _oidc_signing_key(),
    # Rotated-out keys (PEM, separated by blank lines) stay in the JWKS so tokens they signed verify.
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [
        block.strip() + "\n"
        for block in os.environ.get("OIDC_RSA_PRIVATE_KEYS_INACTIVE", "").split("\n\n")
        if block.strip()
    ],
    "OIDC_ISS_ENDPOINT": SBT_PUBLIC_URL + "/o",
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "client_credentials", "refresh_token"],
    "PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("SBT_REFRESH_TOKEN_SECONDS", 14 * 24 * 3600),
    # http redirect URIs only for local development (RFC 8252 loopback callbacks).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if PRODUCTION else ["http", "https"],
    # Every RFC 9700 (OAuth 2.0 Security BCP) behaviour django-oauth-toolkit offers, turned on.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": PRODUCTION,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# --- Celery -----------------------------------------------------------------------------------
# Embedded default: a broker on the local filesystem (kombu's filesystem transport), worked by
# the `celery worker --beat` that `./sbt run` starts. Set CELERY_BROKER_URL for Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_EMBEDDED_BROKER = not CELERY_BROKER_URL
if CELERY_EMBEDDED_BROKER:
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _dir in (_queue_dir, _processed_dir, _control_dir):
        _dir.mkdir(parents=True, exist_ok=True)
    # A host in the URL: without one kombu warns "No hostname was supplied" on every connection
    # (during migrate, in the worker's log). The filesystem transport ignores it.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        # kombu's default is "control" relative to the working directory: it left a control/
        # folder (exchange tables) in the checkout.
        "control_folder": str(_control_dir),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Provisioning scripts run on their own queue, so production can give them workers (and machines)
# of their own; `./sbt run`'s worker consumes both queues (docs/provisioning.md).
CELERY_TASK_ROUTES = {"provisioning.run": {"queue": "provisioning"}}
# Ride out a broker restart (issue 18): reconnect forever, at startup too, instead of exiting
# after Celery's default 100 attempts; the outbox keeps every event meanwhile. Redis sockets get
# timeouts and a health check, so a dead connection is noticed in seconds, not at TCP's pace.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
if not CELERY_EMBEDDED_BROKER:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
        "health_check_interval": 25,
        "socket_keepalive": True,
    }

# --- The control plane's own settings ----------------------------------------------------------
# Read through sbt_site.conf.sbt_settings, which fills in defaults (see that module).
SBT = {
    # Reverse proxies in front of the server, each appending the address it saw to X-Forwarded-For;
    # 0 (the default) trusts no such header and takes the peer's address (accounts/lockout.py).
    "TRUSTED_PROXY_COUNT": env_int("SBT_TRUSTED_PROXY_COUNT", 0),
    # API requests per OAuth client (per client and user for a user's token); empty: no limit.
    "API_RATE_LIMIT": env_rate("SBT_API_RATE_LIMIT", SBT_DEFAULTS["API_RATE_LIMIT"]),
    # Usage events accepted per tenant per minute, by every face but the operator's file import; 0: none.
    "USAGE_EVENTS_PER_MINUTE_PER_TENANT": env_int(
        "SBT_USAGE_EVENTS_PER_MINUTE_PER_TENANT", SBT_DEFAULTS["USAGE_EVENTS_PER_MINUTE_PER_TENANT"]
    ),
    # How standard events are spelled: "sbt_aws" (SBT 0.9+, the default) or "legacy" (SBT before 0.9).
    "EVENT_NAME_STYLE": os.environ.get("SBT_EVENT_NAME_STYLE", SBT_DEFAULTS["EVENT_NAME_STYLE"]),
}
if SBT["EVENT_NAME_STYLE"] not in EVENT_NAME_STYLES:
    raise ImproperlyConfigured(
        f"SBT_EVENT_NAME_STYLE must be one of {', '.join(EVENT_NAME_STYLES)}, not {SBT['EVENT_NAME_STYLE']!r}"
    )

# Providers, shaped like STORAGES; loaded by sbt_site.providers.get_provider(name).
SBT_PROVIDERS = {}
# The external event bus beside the webhooks (docs/events.md "EventBridge"): every event the
# control plane publishes also goes to this EventBridge bus. boto3 reads its credentials and
# AWS_ENDPOINT_URL_EVENTS itself; AWS_REGION (else AWS_DEFAULT_REGION) names the region.
if os.environ.get("EVENTBRIDGE_BUS_NAME"):
    SBT_PROVIDERS["events"] = {
        "BACKEND": "events.providers.eventbridge.EventBridgeTransport",
        "OPTIONS": {"bus_name": os.environ["EVENTBRIDGE_BUS_NAME"], "region_name": os.environ.get("AWS_REGION")},
    }

# --- Logging ----------------------------------------------------------------------------------
# LOG_FORMAT=json (production's recommended setting, docs/operations.md "Logs"): one JSON object
# per line, with one line per request (sbt.requests) and per Celery task (sbt.tasks). Plain
# (the default, what `./sbt run` shows) leaves those two to runserver's and Celery's own lines.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "sbt_site.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "sbt_site.logcontext.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "sbt.requests": {"level": "INFO" if LOG_FORMAT == "json" else "WARNING"},
        "sbt.tasks": {"level": "INFO" if LOG_FORMAT == "json" else "WARNING"},
    },
}
# Celery would replace the root logger's handlers with its own plain format in the worker.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
