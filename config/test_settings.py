"""Settings for the test suite: the real settings, with their own data folder and a fast hasher."""

import os
from pathlib import Path

# Tests get a data folder of their own (database, broker, logs), apart from `make run`'s. Set
# before the settings are read, and inherited by the processes tests start.
os.environ.setdefault("DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The manifest storage needs collectstatic; tests render pages without it.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405

# A file-backed test database, so that threads with their own connections (and agent processes)
# see the same data as the test.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test_db.sqlite3")}  # noqa: F405
