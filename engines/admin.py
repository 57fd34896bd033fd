"""The staff console for engines: the registry rows, their kill and health actions, and their history.

Engines come only from admission and change only through the lifecycle services, so every field of
an engine is read-only here; staff act on engines with the actions, which call the same services
as the API.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from engines.exceptions import EngineNotFoundError
from engines.models import EngineConn, EngineHistory
from engines.services import request_engine_kill
from linkismanager.admin import (
    AuditedAdminMixin,
    EffectiveHealthFilter,
    HealthHistoryInline,
    LabelInline,
    PinnedFilter,
    ReadOnlyAdminMixin,
    ReasonActionForm,
    action_reason,
    describe_health,
    pin_health,
)
from linkismanager.choices import NodeHealthy
from linkismanager.resources import format_size

__all__ = ["EngineConnAdmin", "EngineHistoryAdmin"]


class LiveFilter(admin.SimpleListFilter):
    """Live engines hold resources until their end is recorded; ended ones are history."""

    title = "end recorded"
    parameter_name = "live"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Live (not ended)"), ("no", "Ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(ended_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(ended_at__isnull=False)
        return queryset


class EngineLabelInline(LabelInline):
    fk_name = "engine"


class EngineHealthHistoryInline(HealthHistoryInline):
    fk_name = "engine"


@admin.register(EngineConn)
class EngineConnAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Engines as the registry knows them; kill and health pins through the lifecycle services."""

    audit_target_type = "engine"
    action_form = ReasonActionForm
    list_display = [
        "display_name",
        "ticket_id",
        "owner",
        "creator",
        "engine_type_version",
        "status",
        "effective_health",
        "ecm",
        "memory_size",
        "cores",
        "pid",
        "created",
        "ended_at",
    ]
    list_display_links = ["display_name"]
    list_select_related = ["ecm"]
    list_filter = ["status", "engine_type", EffectiveHealthFilter, PinnedFilter, LiveFilter, "ecm", "owner"]
    search_fields = ["instance", "ticket_id", "owner"]
    raw_id_fields = ["ecm"]
    inlines = [EngineLabelInline, EngineHealthHistoryInline]
    actions = ["kill_engines", "mark_unhealthy", "mark_healthy"]
    fieldsets = [
        (None, {"fields": ["ticket_id", "instance", "status", "ecm", "owner", "creator", "engine_type_version"]}),
        (
            "Health",
            {
                "fields": [
                    "effective_health",
                    "reported_health",
                    "pinned_health",
                    "pinned_by",
                    "pinned_at",
                    "pinned_reason",
                    "unresponsive_since",
                ]
            },
        ),
        ("Resources", {"fields": ["memory_size", "cores", "instances"]}),
        ("Process", {"fields": ["pid", "process_started_at", "log_dir", "properties", "metrics"]}),
        ("Activity", {"fields": ["created", "ready_at", "last_heartbeat", "last_activity", "modified"]}),
        ("End", {"fields": ["kill_requested_at", "kill_requested_by", "ended_at", "exit_code", "end_reason"]}),
    ]
    # Everything shown is server-owned. The control secret is deliberately not shown at all: it
    # is what callers present to the engine's control port.
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Engines exist only through admission, which checks quotas and places them on an ECM.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # A live engine's row is the only handle on its process: only ended engines may go.
        if obj is not None and obj.ended_at is None:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        # Bulk delete would take live engines along; ended ones are deleted one by one.
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="instance", ordering="instance")
    def display_name(self, engine: EngineConn) -> str:
        return engine.instance or "(starting)"

    @admin.display(description="engine type", ordering="engine_type")
    def engine_type_version(self, engine: EngineConn) -> str:
        return engine.engine_type_label

    @admin.display(description="health")
    def effective_health(self, engine: EngineConn) -> str:
        if not engine.pinned_health:
            return describe_health(engine)
        pinned = f"pinned by {engine.pinned_by or 'unknown'}"
        return (
            f"{engine.health} ({pinned}: {engine.pinned_reason})"
            if engine.pinned_reason
            else f"{engine.health} ({pinned})"
        )

    @admin.display(description="memory", ordering="memory")
    def memory_size(self, engine: EngineConn) -> str:
        return format_size(engine.memory)

    @admin.action(description="Kill selected engines")
    def kill_engines(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = request.user.get_username()
        reason = action_reason(request, "killed by staff")
        started = already = 0
        for engine in queryset.select_related("ecm"):
            try:
                if request_engine_kill(engine, actor=actor, reason=reason, via="admin"):
                    started += 1
                else:
                    already += 1
            except EngineNotFoundError:
                already += 1
        text = f"Kill started for {started} engine{'s' if started != 1 else ''}."
        if already:
            text += f" {already} {'was' if already == 1 else 'were'} already stopping or stopped."
        self.message_user(request, text, messages.SUCCESS if started else messages.WARNING)

    @admin.action(description="Mark unhealthy")
    def mark_unhealthy(self, request: HttpRequest, queryset: QuerySet) -> None:
        pin_health(self, request, queryset, NodeHealthy.UNHEALTHY, default_reason="marked unhealthy by staff")

    @admin.action(description="Mark healthy")
    def mark_healthy(self, request: HttpRequest, queryset: QuerySet) -> None:
        pin_health(self, request, queryset, NodeHealthy.HEALTHY, default_reason="marked healthy by staff")


@admin.register(EngineHistory)
class EngineHistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Linkis' EC resource records: one per ticket id, kept after the engine is gone."""

    list_display = [
        "ticket_id",
        "label_value",
        "create_user",
        "engine_type",
        "service_instance",
        "ecm_instance",
        "status",
        "created",
        "release_time",
    ]
    list_filter = ["status", "engine_type"]
    search_fields = ["ticket_id", "create_user", "service_instance", "ecm_instance"]
    date_hierarchy = "created"
