"""Settings of the engine manager.

The environment is read once, here, through the typed helpers of ``config.env``. The defaults are
the embedded mode: SQLite and a file-system Celery broker and result backend, all under
``DATA_DIR``. ``DATABASE_URL`` switches to PostgreSQL and ``CELERY_BROKER_URL`` /
``CELERY_RESULT_BACKEND`` to Redis. ``docs/configuration.md`` lists every variable.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from config.env import env_bool, env_float, env_int, env_json_templates, env_list, env_path, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# Every process (web, workers, beat, agents) must find the same database and broker, so the data
# folder is resolved against the project folder, never the working directory.
DATA_DIR = env_path("DATA_DIR", Path("var"), base=BASE_DIR)
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret_key() -> str:
    """A key generated once per data folder, so sessions survive restarts in embedded mode."""
    key_file = DATA_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        key_file.touch(mode=0o600)
        key_file.write_text(key)
        return key


SECRET_KEY = env_secret("SECRET_KEY") or _embedded_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# Origins other than the serving host whose browser pages may call the API with the session
# cookie (for example a Linkis web console served elsewhere), as scheme://host[:port].
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "linkismanager",
    "engines",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "linkismanager.linkis.middleware.CrossSiteRequestMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees the lockout flag set during authentication.
    "axes.middleware.AxesMiddleware",
]
# Outermost, so that it times the whole request.
MIDDLEWARE.insert(0, "linkismanager.metrics.HttpMetricsMiddleware")
MIDDLEWARE.insert(1, "linkismanager.logcontext.RequestIdMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------

SQLITE_BUSY_TIMEOUT = env_float("SQLITE_BUSY_TIMEOUT", 30.0, minimum=0)
DATABASE_URL = env_str("DATABASE_URL", "")
SQLITE_OPTIONS = {
    # Several processes share the file: WAL lets readers run beside the writer, the busy timeout
    # waits for a lock instead of failing, and IMMEDIATE transactions take the write lock up
    # front, so a writer never fails half-way with "database is locked" when it upgrades from a
    # read.
    "timeout": SQLITE_BUSY_TIMEOUT,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3", "OPTIONS": SQLITE_OPTIONS}
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication -----------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out user before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Linkis admins (its governance-station admins), case-insensitive, besides Django superusers.
LINKIS_ADMIN_USERS = [name.lower() for name in env_list("LINKIS_ADMIN_USERS", ["hadoop"])]

# The cookie name Linkis clients look for; Lax keeps it off cross-site subrequests and POSTs.
SESSION_COOKIE_NAME = "linkis_user_session_ticket_id_v1"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 24 * 3600, minimum=60)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Login throttle (django-axes): after this many failures for one user name from one address,
# further attempts are refused until the cool-off has passed.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_COOLOFF_SECONDS", 300, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "linkismanager.linkis.auth.lockout_response"
AXES_VERBOSE = False

# --- Internationalisation and static files ------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- REST API -----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "linkismanager.linkis.auth.TokenHeaderAuthentication",
        "linkismanager.linkis.auth.LinkisSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "linkismanager.linkis.exceptions.linkis_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Engine manager (Linkis LinkisManager API)",
    "DESCRIPTION": (
        "The Linkis engine-management REST API under /api/rest_j/v1. Every answer is the Linkis "
        "envelope {method, status, message, data}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/rest_j/v1",
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "linkisSession": {
                "type": "apiKey",
                "in": "cookie",
                "name": "linkis_user_session_ticket_id_v1",
            },
            "linkisTokenCode": {"type": "apiKey", "in": "header", "name": "Token-Code"},
            "linkisTokenUser": {"type": "apiKey", "in": "header", "name": "Token-User"},
        }
    },
    "SECURITY": [{"linkisSession": []}, {"linkisTokenCode": [], "linkisTokenUser": []}],
    "AUTHENTICATION_WHITELIST": [],
}

# Shown by the cluster-facing gateway endpoints the Linkis web console calls.
LINKIS_CLUSTER_NAME = env_str("LINKIS_CLUSTER_NAME", "default")
# /metrics is readable by admins, by scrapers presenting "Authorization: Bearer <METRICS_TOKEN>",
# and from these networks without credentials.
METRICS_TOKEN = env_secret("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
# This manager's own instance, as answers name it (managerServiceInstance).
LINKIS_MANAGER_INSTANCE = env_str("LINKIS_MANAGER_INSTANCE", "127.0.0.1:9101")

# --- Celery -------------------------------------------------------------------------------------

BROKER_DIR = DATA_DIR / "broker"
RESULTS_DIR = DATA_DIR / "results"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", f"file://{RESULTS_DIR}")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("out", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    # Kombu's file-system transport, writing each message whole before consumers can see it.
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Producers write to "out" and consumers read the same folder: one queue store.
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Exchange tables; by default kombu puts them in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The default 1 s poll makes every round trip to an agent about a second long; each hop
        # waits half the interval on average, and a poll of an idle folder costs next to nothing
        # (docs/benchmarks.md: 0.05 s cost a kill ~20 ms per hop).
        "polling_interval": env_float("CELERY_POLLING_INTERVAL", 0.01, minimum=0.001),
    }
if CELERY_RESULT_BACKEND.startswith("file://"):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_RESULT_EXPIRES = timedelta(seconds=env_int("CELERY_RESULT_EXPIRES", 3600, minimum=60))
CELERY_TASK_DEFAULT_QUEUE = "manager"
# Workers and agents log through LOGGING below (with request and ticket ids), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Manager-side tasks go to the "manager" queue; tasks for one host go to "ecm.<instance>", the
# queue its agent consumes (see config.celery.ecm_queue).
CELERY_MANAGER_QUEUE = "manager"
CELERY_ECM_QUEUE_PREFIX = "ecm."
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
CELERY_BEAT_SCHEDULE_FILE = DATA_DIR / "celerybeat-schedule"

# --- Logging ------------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "linkismanager.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s ticket=%(ticket_id)s] %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"axes": {"level": "WARNING"}},
}

# Password of the demo users that `make run` creates (DEMO_PASSWORD overrides it).
DEMO_PASSWORD_DEFAULT = "linkis-demo"

# --- Resources ----------------------------------------------------------------------------------

GIB = 1024**3
# A user's default quota per user + creator + engine type (Linkis: 20 GiB, 10 cores, 10 engines);
# quota rows in the admin override it.
USER_QUOTA_MEMORY = env_int("USER_QUOTA_MEMORY", 20 * GIB, minimum=0)
USER_QUOTA_CORES = env_int("USER_QUOTA_CORES", 10, minimum=0)
USER_QUOTA_INSTANCES = env_int("USER_QUOTA_INSTANCES", 10, minimum=0)
# What one engine asks for when its request does not say (Linkis: 1 GiB, 1 core), per engine
# type; properties of the request override it.
ENGINE_DEFAULT_MEMORY = env_int("ENGINE_DEFAULT_MEMORY", 1 * GIB, minimum=0)
ENGINE_DEFAULT_CORES = env_int("ENGINE_DEFAULT_CORES", 1, minimum=0)
ENGINE_DEFAULT_RESOURCES: dict[str, dict[str, int]] = {}
# An ECM's capacity and protected reserve unless its agent says otherwise (Linkis' defaults).
ECM_DEFAULT_MEMORY = env_int("ECM_MEMORY", 100 * GIB, minimum=0)
ECM_DEFAULT_CORES = env_int("ECM_CORES", 100, minimum=0)
ECM_DEFAULT_INSTANCES = env_int("ECM_INSTANCES", 50, minimum=0)
ECM_RESERVE_MEMORY = env_int("ECM_RESERVE_MEMORY", 10 * GIB, minimum=0)
ECM_RESERVE_CORES = env_int("ECM_RESERVE_CORES", 2, minimum=0)
ECM_RESERVE_INSTANCES = env_int("ECM_RESERVE_INSTANCES", 2, minimum=0)

# --- ECM agent and engines -------------------------------------------------------------------------

# Where agents write engine logs: <root>/<user>/<yyyyMMdd>/<engineType>/<ticketId>/logs/.
ECM_LOG_ROOT = env_path("ECM_LOG_ROOT", DATA_DIR / "engines", base=BASE_DIR)
ECM_PORT = env_int("ECM_PORT", 9102, minimum=1)
ECM_HEARTBEAT_INTERVAL = env_float("ECM_HEARTBEAT_INTERVAL", 10.0, minimum=0.05)
# Host overload: above either figure the agent reports StockAvailable (no new engines).
ECM_OVERLOAD_MEMORY_PERCENT = env_float("ECM_OVERLOAD_MEMORY_PERCENT", 95.0, minimum=0)
ECM_OVERLOAD_CPU_PERCENT = env_float("ECM_OVERLOAD_CPU_PERCENT", 95.0, minimum=0)
# Threads of the agent's Celery worker: launches wait for engines, so allow several at once.
ECM_WORKER_THREADS = env_int("ECM_WORKER_THREADS", 8, minimum=1)
# Run each engine as its owner's OS user. Needs the agent to run as root; when off (the default)
# engines run as the agent's own user.
ECM_SWITCH_USER = env_bool("ECM_SWITCH_USER", False)
ENGINE_START_TIMEOUT = env_float("ENGINE_START_TIMEOUT", 60.0, minimum=0.1)
ENGINE_KILL_GRACE = env_float("ENGINE_KILL_GRACE", 10.0, minimum=0)
# How long a control-port call to an engine may take before it counts as not answering.
ENGINE_CALL_TIMEOUT = env_float("ENGINE_CALL_TIMEOUT", 5.0, minimum=0.1)
# Linkis' lock rule: a lock unused this long is released by the engine (Idle → Unlock).
ENGINE_LOCK_IDLE_SECONDS = env_float("ENGINE_LOCK_IDLE_SECONDS", 300.0, minimum=0.1)
# Output of one code run passed back through the broker is capped at this many bytes.
ENGINE_OUTPUT_LIMIT = env_int("ENGINE_OUTPUT_LIMIT", 1024 * 1024, minimum=1024)
# An engine whose measured memory (RSS) exceeds what it asked for by this factor is killed.
ENGINE_MEMORY_KILL_FACTOR = env_float("ENGINE_MEMORY_KILL_FACTOR", 2.0, minimum=1.0)
# Launch templates per engine type: argv lists, never passed through a shell. "{python}" is the
# agent's interpreter; the agent appends the runtime's own arguments (ready file, workdir). A
# type whose command is not installed fails at launch with that reason.
ENGINE_LAUNCH_TEMPLATES: dict[str, list[str]] = {
    "python": ["{python}", "-m", "engines.runtime", "--kind", "python"],
    "shell": ["{python}", "-m", "engines.runtime", "--kind", "shell"],
}
# More types, as a JSON object of argv lists, e.g. {"hive": ["/opt/hive/bin/engine", "--kind", "hive"]}.
ENGINE_LAUNCH_TEMPLATES.update(env_json_templates("ENGINE_EXTRA_TEMPLATES"))
# How long the manager waits for an agent's answer to a status, code or log request.
ECM_TASK_TIMEOUT = env_float("ECM_TASK_TIMEOUT", 30.0, minimum=0.1)

# --- Engine API waits ------------------------------------------------------------------------------

# createEngineConn/askEngineConn wait this long for the engine when the request does not say
# (Linkis: 40 s), and never longer than the maximum, so a request cannot hold a thread forever.
ENGINE_CREATE_WAIT_DEFAULT = env_float("ENGINE_CREATE_WAIT_DEFAULT", 40.0, minimum=0.1)
ENGINE_CREATE_WAIT_MAX = env_float("ENGINE_CREATE_WAIT_MAX", 600.0, minimum=0.1)
# killEngineConn and rm/enginekill wait this long for the engine's end, so a client can create again.
ENGINE_KILL_WAIT = env_float("ENGINE_KILL_WAIT", 30.0, minimum=0)
# How many reusable engines askEngineConn tries to lock before it creates one (Linkis: 2).
ENGINE_REUSE_CANDIDATES = env_int("ENGINE_REUSE_CANDIDATES", 2, minimum=0)
# How often a waiting request re-reads the engine's status (one indexed read of two columns); a
# request sees the change half an interval late on average (docs/benchmarks.md).
ENGINE_WAIT_POLL_SECONDS = env_float("ENGINE_WAIT_POLL_SECONDS", 0.02, minimum=0.005)
BATCH_KILL_ENGINE_TYPES = env_list("BATCH_KILL_ENGINE_TYPES", ["spark", "hive", "python", "shell"])

# --- Health sweeps --------------------------------------------------------------------------------
# Celery beat sends the health sweep and the housekeeping to the manager queue; docs/design.md
# ("Health sweeps") describes every rule. Durations are seconds unless the name says days.

# How often the health sweep runs, and how many rows one rule handles per run (the rest wait for
# the next run, oldest first).
SWEEP_INTERVAL_SECONDS = env_float("SWEEP_INTERVAL_SECONDS", 30.0, minimum=1)
SWEEP_BATCH_SIZE = env_int("SWEEP_BATCH_SIZE", 500, minimum=1)
# An ECM whose heartbeat (every ECM_HEARTBEAT_INTERVAL, 10 s as in Linkis) is this late is
# reported StockAvailable, then StockUnavailable, then UnHealthy; past ECM_LOST_SECONDS (Linkis'
# 5 min) it is lost: its engines are failed and their resources freed.
ECM_LATE_STOCK_AVAILABLE_SECONDS = env_float("ECM_LATE_STOCK_AVAILABLE_SECONDS", 30.0, minimum=0.1)
ECM_LATE_STOCK_UNAVAILABLE_SECONDS = env_float("ECM_LATE_STOCK_UNAVAILABLE_SECONDS", 60.0, minimum=0.1)
ECM_LATE_UNHEALTHY_SECONDS = env_float("ECM_LATE_UNHEALTHY_SECONDS", 120.0, minimum=0.1)
ECM_LOST_SECONDS = env_float("ECM_LOST_SECONDS", 300.0, minimum=0.1)
if not (
    ECM_LATE_STOCK_AVAILABLE_SECONDS
    <= ECM_LATE_STOCK_UNAVAILABLE_SECONDS
    <= ECM_LATE_UNHEALTHY_SECONDS
    <= ECM_LOST_SECONDS
):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "ECM lateness thresholds must grow: ECM_LATE_STOCK_AVAILABLE_SECONDS <= ECM_LATE_STOCK_UNAVAILABLE_SECONDS"
        " <= ECM_LATE_UNHEALTHY_SECONDS <= ECM_LOST_SECONDS"
    )
# An engine still Starting this long after ENGINE_START_TIMEOUT (which its agent enforces itself)
# is failed and killed: its agent died or never got the launch.
ENGINE_START_SWEEP_MARGIN = env_float("ENGINE_START_SWEEP_MARGIN", 60.0, minimum=0)
# A kill not done this long after it was sent is sent again (the agent escalates to SIGKILL after
# ENGINE_KILL_GRACE); an engine that never had a process is ended at once. Keep it well above
# ENGINE_KILL_GRACE + 10 s.
ENGINE_KILL_DEADLINE = env_float("ENGINE_KILL_DEADLINE", 120.0, minimum=1)
# An engine whose runtime has not answered its agent for this long is failed and killed (Linkis
# clears an engine whose heartbeat is 12 min old).
ENGINE_UNRESPONSIVE_TIMEOUT = env_float("ENGINE_UNRESPONSIVE_TIMEOUT", 720.0, minimum=1)
# An Unlock engine whose last user action is older than this is culled (Linkis'
# wds.linkis.engineconn.max.free.time, 5 min; the same as the lock idle spell).
ENGINE_IDLE_TIMEOUT = env_float("ENGINE_IDLE_TIMEOUT", 300.0, minimum=1)
# Housekeeping: old health records, ended engine rows, Celery result files, the file broker's
# processed messages; each agent prunes its engine log folders at the same cadence.
HOUSEKEEPING_INTERVAL_SECONDS = env_float("HOUSEKEEPING_INTERVAL_SECONDS", 3600.0, minimum=1)
HEALTH_RECORD_RETENTION_DAYS = env_int("HEALTH_RECORD_RETENTION_DAYS", 30, minimum=1)
ENDED_ENGINE_RETENTION_DAYS = env_int("ENDED_ENGINE_RETENTION_DAYS", 7, minimum=1)
ENGINE_LOG_RETENTION_DAYS = env_int("ENGINE_LOG_RETENTION_DAYS", 14, minimum=1)
CELERY_BEAT_SCHEDULE = {
    # A run that waited a whole interval in the queue is dropped (expires): the next one is due.
    "health-sweep": {
        "task": "linkismanager.tasks.sweep_health",
        "schedule": timedelta(seconds=SWEEP_INTERVAL_SECONDS),
        "options": {"queue": CELERY_MANAGER_QUEUE, "expires": SWEEP_INTERVAL_SECONDS},
    },
    "housekeeping": {
        "task": "linkismanager.tasks.housekeeping",
        "schedule": timedelta(seconds=HOUSEKEEPING_INTERVAL_SECONDS),
        "options": {"queue": CELERY_MANAGER_QUEUE, "expires": HOUSEKEEPING_INTERVAL_SECONDS},
    },
}

# Linkis job-history admins (the console's historyAdmin), case-insensitive; admins are counted too.
LINKIS_HISTORY_ADMIN_USERS = [name.lower() for name in env_list("LINKIS_HISTORY_ADMIN_USERS", ["hadoop"])]
