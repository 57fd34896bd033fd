"""The typed environment readers reject bad values, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_json_templates, env_list, env_path, env_secret, env_str


def test_unset_and_blank_values_take_the_default(monkeypatch):
    monkeypatch.delenv("X_TEST", raising=False)
    assert env_str("X_TEST", "d") == "d"
    monkeypatch.setenv("X_TEST", "  ")
    assert env_int("X_TEST", 3) == 3


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("TRUE", True), ("off", False), ("No", False)])
def test_booleans(monkeypatch, raw, value):
    monkeypatch.setenv("X_TEST", raw)
    assert env_bool("X_TEST", not value) is value


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (env_bool, "maybe"),
        (env_int, "ten"),
        (env_int, "1.5"),
        (env_float, "fast"),
        (env_float, "nan"),
        (env_float, "inf"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("X_TEST", raw)
    with pytest.raises(ImproperlyConfigured, match="X_TEST"):
        reader("X_TEST", 1)


def test_bounds_are_enforced(monkeypatch):
    monkeypatch.setenv("X_TEST", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("X_TEST", 1, minimum=0)


def test_lists_drop_blank_items(monkeypatch):
    monkeypatch.setenv("X_TEST", "a, b,,c ")
    assert env_list("X_TEST", []) == ["a", "b", "c"]


def test_relative_paths_resolve_against_the_base_not_the_working_dir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("X_TEST", "data")
    assert env_path("X_TEST", Path("var"), base=Path("/srv/app")) == Path("/srv/app/data")
    monkeypatch.delenv("X_TEST")
    assert env_path("X_TEST", Path("var"), base=Path("/srv/app")) == Path("/srv/app/var")


def test_secrets_can_come_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("X_TEST_FILE", str(secret))
    assert env_secret("X_TEST") == "s3cret"
    monkeypatch.setenv("X_TEST_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="X_TEST_FILE"):
        env_secret("X_TEST")


def _settings_in_subprocess(tmp_path, **env) -> dict:
    """The settings a fresh process computes from ``env``, run from an unrelated folder."""
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    script = (
        "import json; from config import settings as s; "
        "print(json.dumps({'db': str(s.DATABASES['default']['NAME']), "
        "'engine': s.DATABASES['default']['ENGINE'], "
        "'mode': s.DATABASES['default'].get('OPTIONS', {}).get('transaction_mode'), "
        "'broker': s.CELERY_BROKER_URL, 'backend': s.CELERY_RESULT_BACKEND, "
        "'data_dir': str(s.DATA_DIR), 'admins': s.LINKIS_ADMIN_USERS}))"
    )
    # Whatever this run was given (the production leg sets a database and a broker) is dropped.
    dropped = ("DATA_DIR", "DATABASE_URL", "LINKIS_ADMIN_USERS", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean["PYTHONPATH"] = str(settings.BASE_DIR)
    output = subprocess.run(
        [sys.executable, "-c", script], env={**clean, **env}, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout)


def test_the_embedded_defaults_live_under_the_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    found = _settings_in_subprocess(tmp_path, DATA_DIR=str(data_dir))
    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["mode"] == "IMMEDIATE"
    assert found["db"] == str(data_dir / "db.sqlite3")
    assert found["broker"] == "filesystem://"
    assert found["backend"] == f"file://{data_dir / 'results'}"
    assert found["admins"] == ["hadoop"]
    assert (data_dir / "broker" / "out").is_dir()


def test_database_url_and_admins_come_from_the_environment(tmp_path):
    found = _settings_in_subprocess(
        tmp_path,
        DATA_DIR=str(tmp_path / "d"),
        DATABASE_URL="postgres://u:p@127.0.0.1:5432/linkis",
        LINKIS_ADMIN_USERS="Ops, hadoop",
    )
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["db"] == "linkis"
    assert found["admins"] == ["ops", "hadoop"]


def test_a_bad_setting_stops_the_process(tmp_path):
    import subprocess

    with pytest.raises(subprocess.CalledProcessError) as failure:
        _settings_in_subprocess(tmp_path, DATA_DIR=str(tmp_path / "d"), SQLITE_BUSY_TIMEOUT="soon")
    assert "SQLITE_BUSY_TIMEOUT" in failure.value.stderr


def test_the_session_cookie_has_the_linkis_name(settings):
    assert settings.SESSION_COOKIE_NAME == "linkis_user_session_ticket_id_v1"


def test_engine_templates_must_be_argv_lists(monkeypatch):
    monkeypatch.setenv("X_TEST", '{"hive": ["hive-engine", "--kind", "hive"]}')
    assert env_json_templates("X_TEST") == {"hive": ["hive-engine", "--kind", "hive"]}
    for bad in ('["x"]', '{"hive": "hive-engine --kind hive"}', '{"hive": []}', "{not json"):
        monkeypatch.setenv("X_TEST", bad)
        with pytest.raises(ImproperlyConfigured, match="X_TEST"):
            env_json_templates("X_TEST")
