"""The benchmarks still work: ``python -m bench --size tiny`` runs every one of them and writes its
JSON with the expected figures and sane numbers.

Not a timed test: nothing here depends on how fast the machine is. The benchmarks run in a
process of their own, each with its own throw-away data folder and database (a scratch database
on the production leg's PostgreSQL), so they never touch the suite's.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from django.conf import settings

from bench import BENCHMARKS

pytestmark = pytest.mark.integration

# Figures each benchmark must report, by the start of their names.
EXPECTED = {
    "listing": ("listEMEngines", "listAllEMs", "request floor"),
    "heartbeats": ("engine heartbeats, status unchanged", "engine heartbeats, every status changes"),
    "launch": ("createEngineConn → Unlock, one at a time", "createEngineConn → Unlock, 2 at once"),
    "kill": ("killEngineConn → pid gone", "rm/enginekill of 2 at once"),
    "sweep": ("health sweep, 1,000 engines of which 10 stale", "health sweep, 1,000 engines, nothing stale"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("bench")
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--out", str(out)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    assert "== summary (tiny)" in completed.stdout
    return {name: json.loads((out / f"{name}.json").read_text()) for name in (*BENCHMARKS, "summary")}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_writes_its_figures_with_their_limits(results, name):
    document = results[name]
    assert document["benchmark"] == name
    assert document["size"] == "tiny"
    machine = document["machine"]
    assert {"cpu", "cores", "memory_gib", "os", "python", "django", "database"} <= machine.keys()
    assert machine["cores"] >= 1 and machine["memory_gib"] > 0
    figures = {figure["name"]: figure for figure in document["figures"]}
    for start in EXPECTED[name]:
        assert any(figure.startswith(start) for figure in figures), (start, list(figures))
    for figure in figures.values():
        assert figure["ours"], figure
        if figure["limit"] is None:
            assert figure["ratio"] is None and figure["limit_what"], figure
            continue
        assert figure["limit_what"], figure
        assert figure["ratio"] > 0 and math.isfinite(figure["ratio"]), figure
        for values in (figure["ours"], figure["limit"]):
            numbers = [value for key, value in values.items() if key != "n"]
            assert numbers and all(value > 0 for value in numbers), figure


def test_listing_queries_do_not_grow_with_rows(results):
    for figure in results["listing"]["figures"][:2]:
        assert figure["notes"]["queries_constant"] is True, figure
        assert figure["notes"]["queries"] == figure["notes"]["queries_one_row"]


def test_sweep_changes_every_stale_row_once_and_nothing_after(results):
    stale, idle = results["sweep"]["figures"]
    assert stale["notes"]["queries"] > 0
    assert idle["notes"]["changes"] == 0


def test_the_summary_lists_every_ratio(results):
    summary = results["summary"]
    assert summary["size"] == "tiny"
    assert {item["benchmark"] for item in summary["figures"]} == set(BENCHMARKS)
