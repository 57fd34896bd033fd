"""Filters of the engine lists, by Linkis' request field names."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from engines.models import EngineConn
from linkismanager.choices import NodeHealthy, NodeStatus

__all__ = ["EMEnginesFilterSet"]


class EMEnginesFilterSet(django_filters.FilterSet):
    """``listEMEngines``' optional filters; a blank value filters nothing.

    - ``emInstance``: a substring of the engine's own instance, despite the name (the console's
      search box relies on it).
    - ``nodeStatus``: a NodeStatus name; since the documented API lists NodeHealthy names for this
      field, a NodeHealthy name filters by the engine's effective health instead.
    - ``owner``: the owner, any case.
    - ``engineType``: the engine type (``spark``) in any case, or type and version (``spark-2.4.3``).
    """

    emInstance = django_filters.CharFilter(  # noqa: N815 - Linkis wire name
        field_name="instance", lookup_expr="icontains", max_length=128
    )
    nodeStatus = django_filters.ChoiceFilter(  # noqa: N815
        method="filter_node_status",
        choices=NodeStatus.choices + NodeHealthy.choices,
        error_messages={
            "invalid_choice": (
                f"%(value)r is neither a NodeStatus ({', '.join(NodeStatus.values)}) "
                f"nor a NodeHealthy name ({', '.join(NodeHealthy.values)})."
            )
        },
    )
    owner = django_filters.CharFilter(field_name="owner", lookup_expr="iexact", max_length=150)
    engineType = django_filters.CharFilter(method="filter_engine_type", max_length=255)  # noqa: N815

    class Meta:
        model = EngineConn
        fields: list[str] = []

    def filter_node_status(self, queryset: QuerySet[EngineConn], name: str, value: str) -> QuerySet[EngineConn]:
        if value in NodeStatus.values:
            return queryset.filter(status=value)
        # The form allows only the two sets' names, so this is a NodeHealthy name.
        return queryset.filter(Q(pinned_health=value) | Q(pinned_health__isnull=True, reported_health=value))

    def filter_engine_type(self, queryset: QuerySet[EngineConn], name: str, value: str) -> QuerySet[EngineConn]:
        engine_type, dash, version = value.partition("-")
        queryset = queryset.filter(engine_type__iexact=engine_type)
        return queryset.filter(engine_version=version) if dash else queryset
