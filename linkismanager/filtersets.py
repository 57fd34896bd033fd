"""Filters of the manager's list endpoints, with Linkis' query parameter names."""

from __future__ import annotations

import django_filters
from django.db.models import OuterRef, Q, QuerySet, Subquery

from linkismanager.choices import NodeHealthy
from linkismanager.labels import TENANT
from linkismanager.models import EngineConnManager, Label

__all__ = ["EcmFilterSet", "effective_health_q"]

_HEALTH_NAMES = ", ".join(NodeHealthy.values)


def effective_health_q(value: str) -> Q:
    """ECMs whose effective health is ``value``: the pin, else the report; a lost ECM is UnHealthy."""
    condition = Q(pinned_health=value) | Q(pinned_health__isnull=True, reported_health=value)
    if value == NodeHealthy.UNHEALTHY:
        return condition | Q(lost_at__isnull=False)
    return condition & Q(lost_at__isnull=True)


class EcmFilterSet(django_filters.FilterSet):
    """``listAllEMs``: ``instance`` (part of it), ``nodeHealthy`` (a NodeHealthy name), ``owner`` (any
    case) and ``tenantLabel`` (part of the tenant label; ECMs without one are left out).

    Sorted as Linkis sorts: by tenant when ``tenantLabel`` is given, else by instance.
    """

    instance = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the ECM's host:port.")
    nodeHealthy = django_filters.ChoiceFilter(
        choices=NodeHealthy.choices,
        method="filter_node_healthy",
        help_text="The effective health (the admin's pin, else what the ECM reports).",
        error_messages={"invalid_choice": f"Unknown health %(value)s; expected one of {_HEALTH_NAMES}."},
    )
    owner = django_filters.CharFilter(lookup_expr="iexact", help_text="The OS user of the agent, any case.")
    tenantLabel = django_filters.CharFilter(
        method="filter_tenant_label", help_text="Part of the tenant label's value; ECMs without a tenant are left out."
    )

    class Meta:
        model = EngineConnManager
        fields = ["instance", "nodeHealthy", "owner", "tenantLabel"]

    @property
    def qs(self) -> QuerySet:
        queryset = super().qs
        if self.form.cleaned_data.get("tenantLabel"):
            return queryset.order_by("tenant", "instance")
        return queryset.order_by("instance")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        tenant = Label.objects.filter(ecm=OuterRef("pk"), key=TENANT).values("value")[:1]
        return super().filter_queryset(queryset.annotate(tenant=Subquery(tenant)))

    def filter_node_healthy(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(effective_health_q(value))

    def filter_tenant_label(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(tenant__icontains=value)
