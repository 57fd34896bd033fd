"""The staff console for the manager app: tokens, ECMs, quotas, and the health and audit trails.

Server-owned state (status, reported health, heartbeats, capacity the agent registers) is read-only
here; it changes only through the services, which the actions below call like the API does.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from linkismanager.choices import NodeHealthy
from linkismanager.exceptions import ManagerError
from linkismanager.labels import MODIFIABLE_LABEL_KEYS, LabelError, is_modifiable, validate_label
from linkismanager.models import (
    AuditEntry,
    EngineConnManager,
    HealthFields,
    HealthRecord,
    Label,
    Token,
    UserQuota,
)
from linkismanager.resources import LoadInstance, format_size
from linkismanager.services import Capacity, audit, ecm_capacities, remove_ecm, set_pinned_health

__all__ = [
    "AuditEntryAdmin",
    "AuditedAdminMixin",
    "EffectiveHealthFilter",
    "EngineConnManagerAdmin",
    "HealthHistoryInline",
    "HealthRecordAdmin",
    "LabelInline",
    "PinnedFilter",
    "ReadOnlyAdminMixin",
    "ReasonActionForm",
    "TokenAdmin",
    "UserQuotaAdmin",
    "action_reason",
    "describe_health",
    "describe_pin",
    "pin_health",
]

# How many health changes a node's change page shows; the full history is in its own admin.
HEALTH_HISTORY_ROWS = 50


# --- Shared pieces (the engine admin uses them too) -----------------------------------------------


class ReadOnlyAdminMixin:
    """For append-only records: staff may look, never add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReasonActionForm(ActionForm):
    """The action bar with a free-text reason, kept in the health history and the audit trail."""

    reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason:",
        widget=forms.TextInput(attrs={"placeholder": "why (kept in the history)", "size": 30}),
    )


def action_reason(request: HttpRequest, default: str) -> str:
    """The reason typed next to the action, or ``default``."""
    return (request.POST.get("reason") or "").strip()[:500] or default


class EffectiveHealthFilter(admin.SimpleListFilter):
    """Filter on the health that counts: the pin, else the reported value (a lost ECM is UnHealthy)."""

    title = "health"
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(NodeHealthy.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value not in NodeHealthy.values:
            return queryset
        condition = Q(pinned_health=value) | Q(pinned_health__isnull=True, reported_health=value)
        if any(field.name == "lost_at" for field in queryset.model._meta.fields):
            if value == NodeHealthy.UNHEALTHY:
                condition |= Q(lost_at__isnull=False)
            else:
                condition &= Q(lost_at__isnull=True)
        return queryset.filter(condition)


class PinnedFilter(admin.SimpleListFilter):
    """Whether an admin has pinned the health."""

    title = "health pinned"
    parameter_name = "pinned"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Pinned"), ("no", "Not pinned")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(pinned_health__isnull=False)
        if self.value() == "no":
            return queryset.filter(pinned_health__isnull=True)
        return queryset


def describe_health(node: HealthFields) -> str:
    """The effective health, saying why when it is not simply what the node reports."""
    health = node.health
    if getattr(node, "lost_at", None) is not None:
        return f"{health} (lost)"
    if node.pinned_health:
        return f"{health} (pinned)"
    return health


def describe_pin(node: HealthFields) -> str:
    """Who pinned the health, to what and why; a dash when it is not pinned."""
    if not node.pinned_health:
        return "-"
    text = f"{node.pinned_health} by {node.pinned_by or 'unknown'}"
    return f"{text}: {node.pinned_reason}" if node.pinned_reason else text


def pin_health(
    model_admin: admin.ModelAdmin, request: HttpRequest, nodes: QuerySet, health: str, *, default_reason: str
) -> None:
    """Pin (or, with Healthy, unpin) the health of ``nodes`` through the service, and say what was done.

    Nodes whose records are closed (ended engines) and, for Healthy, nodes without a pin are left
    alone, so the history and audit trail only record real changes.
    """
    actor = request.user.get_username()
    reason = action_reason(request, default_reason)
    changed = skipped = 0
    for node in nodes:
        ended = getattr(node, "ended_at", None) is not None
        if ended or (health == NodeHealthy.HEALTHY and not node.pinned_health):
            skipped += 1
            continue
        set_pinned_health(node, health, actor=actor, reason=reason, via="admin")
        changed += 1
    name = model_admin.model._meta.verbose_name_plural if changed != 1 else model_admin.model._meta.verbose_name
    verb = "unpinned (Healthy)" if health == NodeHealthy.HEALTHY else f"pinned to {health}"
    text = f"Health of {changed} {name} {verb}."
    if skipped:
        text += f" {skipped} left alone (ended, or not pinned)."
    model_admin.message_user(request, text, messages.SUCCESS if changed else messages.WARNING)


def _system_label_error(key: str) -> ValidationError:
    return ValidationError(
        f"The label {key} is kept by the manager; staff edit only {', '.join(sorted(MODIFIABLE_LABEL_KEYS))}."
    )


class LabelInlineFormSet(forms.BaseInlineFormSet):
    """Refuses one key twice in a submission (the database constraint would only fail on save) and
    the removal of labels the manager keeps."""

    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if form.cleaned_data.get("DELETE"):
                if form.instance.pk is not None and not is_modifiable(form.instance.key):
                    raise _system_label_error(form.instance.key)
                continue
            key = form.cleaned_data.get("key")
            if key in seen:
                raise ValidationError(f"The label {key} is given twice; a node has one value per key.")
            seen.add(key)


class LabelForm(forms.ModelForm):
    """A label row, checked by the rules of the API's label edits (modifyEMInfo, modifyEngineInfo):
    only the user-modifiable keys change, and their values have Linkis' formats.

    The other keys (serverAlias, emInstance, engineInstance, engineType …) are what placement and
    the agents rely on; the manager sets them.
    """

    class Meta:
        model = Label
        fields = ["key", "value"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        key, value = cleaned.get("key"), cleaned.get("value")
        if self.instance.pk is None or self.has_changed():
            for touched in {key, self.initial.get("key")} - {None}:
                if not is_modifiable(touched):
                    raise _system_label_error(touched)
        if key is not None and value is not None:
            try:
                cleaned["value"] = validate_label(key, value)
            except LabelError as exc:
                raise ValidationError(str(exc)) from None
        return cleaned


class LabelInline(admin.TabularInline):
    """A node's labels, one row per key, editable by staff."""

    model = Label
    form = LabelForm
    formset = LabelInlineFormSet
    fields = ["key", "value", "modified"]
    readonly_fields = ["modified"]
    extra = 0


class RecentHistoryFormSet(forms.BaseInlineFormSet):
    """Only the newest health changes: a long-lived node has thousands."""

    def get_queryset(self) -> QuerySet:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset().order_by("-created", "-id")[:HEALTH_HISTORY_ROWS]
        return self._recent


class HealthHistoryInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The node's latest status and health changes, newest first, read-only."""

    model = HealthRecord
    formset = RecentHistoryFormSet
    fields = ["created", "field", "old", "new", "source", "actor", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "health change"
    verbose_name_plural = f"health history (latest {HEALTH_HISTORY_ROWS})"


class AuditedAdminMixin:
    """Records every add, change and delete made in the admin in the audit trail."""

    audit_target_type = ""
    audit_fields: tuple[str, ...] = ()

    def _audit_values(self, obj: Model) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self.audit_fields}

    def save_model(self, request: HttpRequest, obj: Model, form: forms.ModelForm, change: bool) -> None:
        before = self._audit_values(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        after = self._audit_values(obj)
        if before != after:
            audit(
                actor=request.user.get_username(),
                via="admin",
                action=f"{'change' if change else 'add'}_{self.audit_target_type}",
                target_type=self.audit_target_type,
                target=str(obj),
                before=before,
                after=after,
            )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            self._audit_delete(request, obj)
        super().delete_queryset(request, queryset)

    def _audit_delete(self, request: HttpRequest, obj: Model) -> None:
        audit(
            actor=request.user.get_username(),
            via="admin",
            action=f"delete_{self.audit_target_type}",
            target_type=self.audit_target_type,
            target=str(obj),
            before=self._audit_values(obj),
        )

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is not Label:
            super().save_formset(request, form, formset, change)
            return
        node = form.instance
        owner = {formset.fk.name: node}
        before = dict(Label.objects.filter(**owner).values_list("key", "value"))
        super().save_formset(request, form, formset, change)
        after = dict(Label.objects.filter(**owner).values_list("key", "value"))
        if before != after:
            audit(
                actor=request.user.get_username(),
                via="admin",
                action="set_labels",
                target_type=self.audit_target_type,
                target=str(node),
                before=before,
                after=after,
            )


# --- Tokens --------------------------------------------------------------------------------------


class TokenForm(forms.ModelForm):
    code = forms.CharField(
        required=False,
        strip=True,
        max_length=256,
        help_text="The token code clients send as Token-Code. Leave empty to generate one (new "
        "tokens) or to keep the current one. It is shown once and stored only as a hash.",
    )

    class Meta:
        model = Token
        fields = ["name", "code", "legal_users", "legal_hosts", "is_admin", "expires_at"]


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    form = TokenForm
    list_display = ["name", "key_prefix", "legal_users", "legal_hosts", "is_admin", "expires_at", "modified"]
    list_filter = ["is_admin"]
    search_fields = ["name", "legal_users"]
    readonly_fields = ["key_prefix", "created", "modified"]

    def save_model(self, request, obj: Token, form: TokenForm, change: bool) -> None:
        code = form.cleaned_data.get("code") or ""
        if not code and not change:
            code = Token.generate_code()
        if code:
            obj.set_code(code)
        super().save_model(request, obj, form, change)
        if code:
            messages.warning(request, f"Token code for {obj.name}: {code} — copy it now, it is not shown again.")


# --- ECMs ----------------------------------------------------------------------------------------


def _load_text(load: LoadInstance) -> str:
    """A resource triple, short enough for a list column."""
    return f"{format_size(load.memory)}, {load.cores} cores, {load.instances} inst."


class EcmChangeList(ChangeList):
    """Derives used, locked and left for the whole page in one query, not one per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Evaluating the page here fills the queryset's cache, so the rows the template renders
        # are the ones carrying the capacity.
        capacities = ecm_capacities(self.result_list)
        for ecm in self.result_list:
            ecm._admin_capacity = capacities[ecm.pk]


def _capacity(ecm: EngineConnManager) -> Capacity:
    capacity = getattr(ecm, "_admin_capacity", None)
    if capacity is None:
        capacity = ecm._admin_capacity = ecm_capacities([ecm])[ecm.pk]
    return capacity


class EcmLabelInline(LabelInline):
    fk_name = "ecm"


class EcmHealthHistoryInline(HealthHistoryInline):
    fk_name = "ecm"


@admin.register(EngineConnManager)
class EngineConnManagerAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """ECMs register themselves through their agent; staff keep a description, labels and health pins."""

    audit_target_type = "ecm"
    audit_fields = ("description",)
    action_form = ReasonActionForm
    list_display = [
        "instance",
        "owner",
        "status",
        "effective_health",
        "reported_health",
        "pin",
        "capacity",
        "used",
        "locked",
        "left",
        "last_heartbeat",
        "lost_at",
    ]
    list_filter = ["status", EffectiveHealthFilter, PinnedFilter]
    search_fields = ["instance", "owner", "description"]
    inlines = [EcmLabelInline, EcmHealthHistoryInline]
    actions = ["pin_unhealthy", "pin_stock_available", "unpin_health", "remove_decommissioned"]
    readonly_fields = [
        "instance",
        "owner",
        "status",
        "effective_health",
        "reported_health",
        "pinned_health",
        "pinned_by",
        "pinned_at",
        "pinned_reason",
        "max_memory_size",
        "max_cores",
        "max_instances",
        "reserve",
        "used",
        "locked",
        "left",
        "host_metrics",
        "registered_at",
        "last_heartbeat",
        "lost_at",
        "created",
        "modified",
    ]
    fieldsets = [
        (None, {"fields": ["instance", "owner", "status", "description"]}),
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
                ]
            },
        ),
        (
            "Resources",
            {
                "fields": ["max_memory_size", "max_cores", "max_instances", "reserve", "used", "locked", "left"],
                "description": "Capacity and reserve as the agent registered them; used (running engines) "
                "and locked (starting engines) are derived from the live engines.",
            },
        ),
        ("Heartbeat", {"fields": ["registered_at", "last_heartbeat", "lost_at", "host_metrics"]}),
        ("Record", {"fields": ["created", "modified"], "classes": ["collapse"]}),
    ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EcmChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        # An ECM exists because its agent registered (Running, with its serverAlias and emInstance
        # labels); a row typed in by hand would have no agent to launch anything.
        return False

    @admin.display(description="health")
    def effective_health(self, ecm: EngineConnManager) -> str:
        return describe_health(ecm)

    @admin.display(description="pinned")
    def pin(self, ecm: EngineConnManager) -> str:
        return describe_pin(ecm)

    @admin.display(description="capacity")
    def capacity(self, ecm: EngineConnManager) -> str:
        return _load_text(_capacity(ecm).maximum)

    @admin.display(description="max memory")
    def max_memory_size(self, ecm: EngineConnManager) -> str:
        return f"{format_size(ecm.max_memory)} ({ecm.max_memory} bytes)"

    @admin.display(description="protected reserve")
    def reserve(self, ecm: EngineConnManager) -> str:
        return _load_text(_capacity(ecm).reserve)

    @admin.display(description="used")
    def used(self, ecm: EngineConnManager) -> str:
        return _load_text(_capacity(ecm).used)

    @admin.display(description="locked")
    def locked(self, ecm: EngineConnManager) -> str:
        return _load_text(_capacity(ecm).locked)

    @admin.display(description="left")
    def left(self, ecm: EngineConnManager) -> str:
        return _load_text(_capacity(ecm).left)

    @admin.action(description="Pin health: UnHealthy")
    def pin_unhealthy(self, request: HttpRequest, queryset: QuerySet) -> None:
        pin_health(self, request, queryset, NodeHealthy.UNHEALTHY, default_reason="pinned UnHealthy by staff")

    @admin.action(description="Pin health: StockAvailable (drain)")
    def pin_stock_available(self, request: HttpRequest, queryset: QuerySet) -> None:
        pin_health(self, request, queryset, NodeHealthy.STOCK_AVAILABLE, default_reason="drained by staff")

    @admin.action(description="Mark healthy (remove pin)")
    def unpin_health(self, request: HttpRequest, queryset: QuerySet) -> None:
        pin_health(self, request, queryset, NodeHealthy.HEALTHY, default_reason="pin removed by staff")

    @admin.action(description="Remove decommissioned ECMs (agent stopped, no live engines)")
    def remove_decommissioned(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Remove each selected ECM through the service, which refuses one whose agent still runs or
        that still has live engines; say which were removed and why the others were not."""
        actor = request.user.get_username()
        removed: list[str] = []
        for ecm in queryset:
            try:
                remove_ecm(ecm, actor=actor, via="admin")
            except ManagerError as exc:
                self.message_user(request, f"Not removed: {exc.message}", messages.ERROR)
                continue
            removed.append(ecm.instance)
        if removed:
            self.message_user(request, f"Removed {len(removed)} ECM(s): {', '.join(removed)}.", messages.SUCCESS)


# --- Quotas --------------------------------------------------------------------------------------


@admin.register(UserQuota)
class UserQuotaAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Per user, creator and engine type limits; an empty limit takes the default from the settings."""

    audit_target_type = "quota"
    audit_fields = ("user", "creator", "engine_type", "max_memory", "max_cores", "max_instances")
    list_display = ["user", "creator", "engine_type", "memory_limit", "cores_limit", "instances_limit", "modified"]
    list_filter = ["creator", "engine_type"]
    search_fields = ["user"]
    readonly_fields = ["effective_limits", "created", "modified"]
    fields = ["user", "creator", "engine_type", "max_memory", "max_cores", "max_instances", "effective_limits"]

    @admin.display(description="memory", ordering="max_memory")
    def memory_limit(self, quota: UserQuota) -> str:
        return "default" if quota.max_memory is None else format_size(quota.max_memory)

    @admin.display(description="cores", ordering="max_cores")
    def cores_limit(self, quota: UserQuota) -> str:
        return "default" if quota.max_cores is None else str(quota.max_cores)

    @admin.display(description="instances", ordering="max_instances")
    def instances_limit(self, quota: UserQuota) -> str:
        return "default" if quota.max_instances is None else str(quota.max_instances)

    @admin.display(description="limits in force")
    def effective_limits(self, quota: UserQuota) -> str:
        if quota.pk is None:
            return "-"
        return LoadInstance(*quota.limits()).describe()


# --- Trails --------------------------------------------------------------------------------------


@admin.register(HealthRecord)
class HealthRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every status and health change of every node, as the services recorded it."""

    list_display = ["created", "node_kind", "instance", "field", "old", "new", "source", "actor", "reason"]
    list_filter = ["source", "node_kind", "field"]
    search_fields = ["instance", "actor"]
    date_hierarchy = "created"
    raw_id_fields = ["ecm", "engine"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who changed what, through the API, the admin, the agent or a sweep."""

    list_display = ["created", "actor", "via", "action", "target_type", "target"]
    list_filter = ["via", "target_type", "action"]
    search_fields = ["target", "actor"]
    date_hierarchy = "created"
