"""Prometheus metrics at ``/metrics``.

Registry figures (engines by status, type and ECM; ECM health, capacity and use; launch and kill
counts and latencies) are read from the database at scrape time, so they are right whichever
process serves the scrape and whichever host launched or killed an engine. HTTP request metrics
are counted in the web processes (multi-process mode under gunicorn, when
``PROMETHEUS_MULTIPROC_DIR`` is set).
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["HttpMetricsMiddleware", "RegistryCollector", "metrics_view"]

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)

HTTP_REQUESTS = Counter(
    "linkis_http_requests", "HTTP requests served, by route, method and status.", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "linkis_http_request_duration_seconds",
    "Time to serve an HTTP request, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


class HttpMetricsMiddleware:
    """Counts requests and their durations, labelled by URL route (not by raw path)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
        return response


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


class RegistryCollector(Collector):
    """Gauges and histograms computed from the registry at scrape time (a few grouped queries)."""

    def collect(self) -> Iterator:
        from engines.models import EngineConn
        from linkismanager.models import EngineConnManager
        from linkismanager.services import ecm_capacities

        engines = GaugeMetricFamily(
            "linkis_engines",
            "Engines not yet ended, by status, engine type and ECM.",
            labels=["status", "engine_type", "ecm"],
        )
        rows = (
            EngineConn.objects.live()
            .values("status", "engine_type", "engine_version", "ecm__instance")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            engines.add_metric(
                [row["status"], f"{row['engine_type']}-{row['engine_version']}", row["ecm__instance"]], row["n"]
            )
        yield engines

        ecms = list(EngineConnManager.objects.all())
        capacities = ecm_capacities(ecms)
        health = GaugeMetricFamily("linkis_ecm_health", "1 for each ECM's effective health.", labels=["ecm", "health"])
        up = GaugeMetricFamily("linkis_ecm_up", "1 when the ECM is Running and not lost.", labels=["ecm"])
        families = {
            (kind, part): GaugeMetricFamily(
                f"linkis_ecm_{kind}_{part}", f"ECM {kind} {part.replace('_', ' ')}.", labels=["ecm"]
            )
            for kind in ("capacity", "used", "locked", "left")
            for part in ("memory_bytes", "cores", "instances")
        }
        for ecm in ecms:
            health.add_metric([ecm.instance, ecm.health], 1)
            up.add_metric([ecm.instance], 1 if ecm.status == "Running" and ecm.lost_at is None else 0)
            capacity = capacities[ecm.pk]
            for kind, figures in (
                ("capacity", capacity.maximum),
                ("used", capacity.used),
                ("locked", capacity.locked),
                ("left", capacity.left),
            ):
                families[(kind, "memory_bytes")].add_metric([ecm.instance], figures.memory)
                families[(kind, "cores")].add_metric([ecm.instance], figures.cores)
                families[(kind, "instances")].add_metric([ecm.instance], figures.instances)
        yield health
        yield up
        yield from families.values()

        yield self._histogram(
            "linkis_engine_launch_seconds",
            "Time from admission to Unlock, over the engines still in the registry.",
            EngineConn.objects.filter(ready_at__isnull=False),
            F("ready_at") - F("created"),
        )
        yield self._histogram(
            "linkis_engine_kill_seconds",
            "Time from a kill request to the recorded end, over the engines still in the registry.",
            EngineConn.objects.filter(kill_requested_at__isnull=False, ended_at__isnull=False),
            F("ended_at") - F("kill_requested_at"),
        )
        outcomes = GaugeMetricFamily(
            "linkis_engine_launches",
            "Engines admitted that are still in the registry, by outcome (ready, failed before ready, starting).",
            labels=["outcome"],
        )
        counts = EngineConn.objects.aggregate(
            ready=Count("id", filter=Q(ready_at__isnull=False)),
            failed=Count("id", filter=Q(ready_at__isnull=True, ended_at__isnull=False)),
            starting=Count("id", filter=Q(ready_at__isnull=True, ended_at__isnull=True)),
        )
        for outcome, value in counts.items():
            outcomes.add_metric([outcome], value)
        yield outcomes
        yield from sweep_metrics()

    @staticmethod
    def _histogram(name: str, documentation: str, queryset, expression) -> HistogramMetricFamily:
        duration = ExpressionWrapper(expression, output_field=DurationField())
        annotated = queryset.annotate(duration=duration)
        aggregates = {
            f"le_{index}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
            for index, bound in enumerate(LATENCY_BUCKETS)
        }
        figures = annotated.aggregate(total=Count("id"), seconds=Sum("duration"), **aggregates)
        buckets = [(str(bound), figures[f"le_{index}"]) for index, bound in enumerate(LATENCY_BUCKETS)]
        buckets.append(("+Inf", figures["total"]))
        family = HistogramMetricFamily(name, documentation)
        family.add_metric([], buckets, _seconds(figures["seconds"]))
        return family


def sweep_metrics() -> Iterator:
    """Figures of the last run of each sweep, as the sweeps record them in the database."""
    from linkismanager.models import SweepRun

    duration = GaugeMetricFamily(
        "linkis_sweep_last_duration_seconds", "Duration of the last run of each sweep.", labels=["sweep"]
    )
    runs = GaugeMetricFamily("linkis_sweep_runs", "Runs of each sweep so far.", labels=["sweep"])
    errors = GaugeMetricFamily(
        "linkis_sweep_last_errors", "Rows or rules that failed in the last run.", labels=["sweep"]
    )
    changed = GaugeMetricFamily(
        "linkis_sweep_last_changes", "Rows changed by the last run of each sweep, by rule.", labels=["sweep", "rule"]
    )
    for run in SweepRun.objects.all():
        duration.add_metric([run.name], run.last_duration)
        runs.add_metric([run.name], run.runs)
        errors.add_metric([run.name], run.last_errors)
        for rule, count in (run.last_counts or {}).items():
            if isinstance(count, int | float):
                changed.add_metric([run.name, rule], count)
    yield duration
    yield runs
    yield errors
    yield changed


def _allowed(request: HttpRequest) -> bool:
    """Who may read metrics: a scraper with the bearer token, a listed address, or an admin."""
    from linkismanager.linkis.permissions import is_linkis_admin

    token = settings.METRICS_TOKEN
    if token and request.META.get("HTTP_AUTHORIZATION", "") == f"Bearer {token}":
        return True
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        client = None
    if client is not None:
        for network in settings.METRICS_ALLOWED_NETWORKS:
            if client in ipaddress.ip_network(network, strict=False):
                return True
    return is_linkis_admin(getattr(request, "user", None))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition."""
    if not _allowed(request):
        return HttpResponse("metrics: forbidden\n", status=403, content_type="text/plain")
    registry = CollectorRegistry()
    registry.register(RegistryCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(HTTP_REQUESTS)
        registry.register(HTTP_LATENCY)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
