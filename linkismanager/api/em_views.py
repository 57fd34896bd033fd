"""The ECM endpoints (Linkis' EMRestfulApi) under /api/rest_j/v1/linkisManager/.

Thin views: read the request with Linkis' field names and error texts, call a service, answer the
envelope. The rules live in ``linkismanager.services`` (edits, removal, forecasts, figures) and
``engines.log_access`` (who may read which engine log, read through its ECM's agent).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from engines.log_access import find_ecm, read_engine_log, service_instance_text
from engines.logs import LogParamError, LogQuery
from engines.models import EngineConn
from linkismanager.api.em_serializers import (
    EcmOperationByEcSerializer,
    EcmOperationSerializer,
    EcmVoSerializer,
    LoadInstanceSerializer,
    LogResultSerializer,
    ModifyEMInfoSerializer,
    OpenEngineLogSerializer,
)
from linkismanager.choices import NodeHealthy
from linkismanager.filtersets import EcmFilterSet
from linkismanager.labels import (
    ECM_APPLICATION_NAME,
    ENGINE_APPLICATION_NAME,
    TENANT,
    format_user_creator,
    label_json,
    parse_engine_type,
    parse_label_list,
    validate_label,
)
from linkismanager.linkis.envelope import linkis_response
from linkismanager.linkis.exceptions import LinkisAPIError
from linkismanager.linkis.fields import body_object, optional_text, require_instance
from linkismanager.linkis.permissions import IsLinkisAdmin, request_is_admin
from linkismanager.linkis.schema import linkis_schema
from linkismanager.linkis.views import LinkisAPIView
from linkismanager.models import EngineConnManager
from linkismanager.resources import resource_json
from linkismanager.services import (
    ALL,
    Capacity,
    ecm_capacities,
    predict_engine,
    recompute_resources,
    update_ecm_info,
)

__all__ = [
    "ExecuteECMOperationByECView",
    "ExecuteECMOperationView",
    "ListAllECMHealthyStatusView",
    "ListAllEMsView",
    "ModifyEMInfoView",
    "OpenEngineLogView",
    "ResetResourceView",
    "TaskPredictionView",
    "ecm_vo",
]

ADMIN_CODE = 210003
ONLY_ADMIN_ECMS = "Only admin can modify ECMs(只有管理员才能修改ECM)"
ONLY_ADMIN_RESET = "Only Admin Can Use Reset Resource (重置资源仅管理员使用)"
OPERATOR_NAME = "__operator_name__"
OPERATOR_CODE = 20031
# The ECM operators served, and the log each one reads (None: the request's logType).
OPERATORS: dict[str, str | None] = {"engineConnLog": None, "engineConnYarnLog": "yarnApp"}
TAGS = ["ecms"]


class LinkisAdminOnly(IsLinkisAdmin):
    """Admins only; anonymous callers get the 401 envelope, others the view's Linkis text (and code)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if super().has_permission(request, view):
            return True
        if request.user and request.user.is_authenticated:
            raise LinkisAPIError(view.admin_denied_message, code=getattr(view, "admin_denied_code", None))
        return False


# --- Reading requests -------------------------------------------------------------------------------


def _caller(request: Request) -> str:
    return request.user.get_username()


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "":
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise LinkisAPIError(f"{name} must be true or false, got {value!r:.60}.")


def _parameters(data: dict[str, Any]) -> dict[str, Any]:
    parameters = data.get("parameters")
    if parameters is None:
        raise LinkisAPIError("parameters cannot be null(请求参数parameters不能为空)")
    if not isinstance(parameters, dict):
        raise LinkisAPIError(f"parameters must be a JSON object, got {type(parameters).__name__}.")
    return parameters


def _log_query(parameters: dict[str, Any], *, default_tail: bool) -> LogQuery:
    try:
        return LogQuery.from_params(parameters, default_tail=default_tail)
    except LogParamError as exc:
        raise LinkisAPIError(str(exc)) from None


def _log_dir_suffix(parameters: dict[str, Any]) -> str | None:
    value = parameters.get("logDirSuffix")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise LinkisAPIError(f"parameters.logDirSuffix must be a string, got {type(value).__name__}.")
    return value


def _ecm(instance: str) -> EngineConnManager:
    """The ECM at ``instance``, or an error naming what the instance is instead."""
    ecm = EngineConnManager.objects.filter(instance=instance).first()
    if ecm is not None:
        return ecm
    if EngineConn.objects.filter(instance=instance).exists():
        raise LinkisAPIError(f"{instance} is an engine ({ENGINE_APPLICATION_NAME}), not an ECM.")
    raise LinkisAPIError(f"ECM {instance} does not exist.")


def _query_text(request: Request, name: str, *, required_message: str | None = None) -> str | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        if required_message:
            raise LinkisAPIError(required_message)
        return None
    return value


def _epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


# --- Answers ----------------------------------------------------------------------------------------


def ecm_vo(ecm: EngineConnManager, capacity: Capacity) -> dict[str, Any]:
    """One ECM as ``listAllEMs`` shows it: Linkis' EMNodeVo, with its status, pin and host figures."""
    metrics = ecm.host_metrics or {}
    overload = {key: metrics.get(key) for key in ("maxMemory", "usedMemory", "systemCPUUsed", "systemLeftMemory")}
    pinned = ecm.pinned_health is not None
    return {
        "applicationName": ECM_APPLICATION_NAME,
        "instance": ecm.instance,
        "nodeHealthy": ecm.health,
        "nodeStatus": ecm.status,
        "msg": ecm.pinned_reason if pinned else None,
        # Uses the prefetched labels.
        "labels": [label_json(label.key, label.value) for label in ecm.labels.all()],
        "owner": ecm.owner,
        "description": ecm.description,
        "startTime": _epoch_ms(ecm.registered_at or ecm.created),
        **resource_json(max=capacity.maximum, min=capacity.reserve, used=capacity.used, locked=capacity.locked),
        "runningTasks": None,
        "pendingTasks": None,
        "succeedTasks": None,
        "failedTasks": None,
        **overload,
        "nodeOverLoadInfo": overload,
        "reportedHealth": ecm.reported_health,
        "pinnedHealth": ecm.pinned_health,
        "pinnedBy": ecm.pinned_by if pinned else None,
        "pinnedAt": _epoch_ms(ecm.pinned_at) if pinned else None,
        "pinnedReason": ecm.pinned_reason if pinned else None,
        "lastHeartbeat": _epoch_ms(ecm.last_heartbeat),
        "lost": ecm.lost_at is not None,
    }


_operation_data = {
    "result": LogResultSerializer(help_text="What the operator answered; {} when isError."),
    "errorMsg": serializers.CharField(),
    "isError": serializers.BooleanField(help_text="true when the operator failed, e.g. the log file is missing"),
}


# --- Views ------------------------------------------------------------------------------------------


class ListAllEMsView(LinkisAPIView):
    """Every ECM with its labels, health, derived resources and host figures (admins only)."""

    permission_classes = [LinkisAdminOnly]
    admin_denied_message = ONLY_ADMIN_ECMS
    admin_denied_code = ADMIN_CODE

    @linkis_schema(
        "listAllEMs",
        summary="List the ECMs",
        data={"EMs": EcmVoSerializer(many=True)},
        parameters=[
            OpenApiParameter("instance", str, required=False, description="Part of the ECM's host:port."),
            OpenApiParameter("nodeHealthy", str, required=False, enum=NodeHealthy.values, description="Health."),
            OpenApiParameter("owner", str, required=False, description="The agent's OS user, any case."),
            OpenApiParameter(
                "tenantLabel", str, required=False, description="Part of the tenant label; sorts by tenant."
            ),
        ],
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        filterset = EcmFilterSet(request.query_params, queryset=EngineConnManager.objects.prefetch_related("labels"))
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        ecms = list(filterset.qs)
        capacities = ecm_capacities(ecms)
        return linkis_response(request, {"EMs": [ecm_vo(ecm, capacities[ecm.pk]) for ecm in ecms]})


class ListAllECMHealthyStatusView(LinkisAPIView):
    """The NodeHealthy names an ECM may have (all five may be set by an admin)."""

    @linkis_schema(
        "listAllECMHealthyStatus",
        summary="All NodeHealthy names",
        data={"nodeHealthy": serializers.ListField(child=serializers.CharField())},
        parameters=[
            OpenApiParameter("onlyEditable", bool, required=False, description="Default false; all five are editable.")
        ],
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        _flag(request, "onlyEditable")
        return linkis_response(request, {"nodeHealthy": list(NodeHealthy.values)})


class ModifyEMInfoView(LinkisAPIView):
    """An admin edits an ECM: health (pinned until an admin sets Healthy), labels, remark."""

    permission_classes = [LinkisAdminOnly]
    admin_denied_message = ONLY_ADMIN_ECMS
    admin_denied_code = ADMIN_CODE

    @linkis_schema(
        "modifyEMInfo",
        summary="Edit an ECM",
        request=ModifyEMInfoSerializer,
        data={"nodeHealthy": serializers.CharField(help_text="The health after the edit.")},
        tags=TAGS,
    )
    def put(self, request: Request) -> Response:
        data = body_object(request.data)
        _, instance = require_instance(data)
        health = data.get("emStatus")
        if health == "":
            health = None
        if health is not None and (not isinstance(health, str) or health not in NodeHealthy.values):
            raise LinkisAPIError(f"emStatus must be one of {', '.join(NodeHealthy.values)}, got {health!r:.60}.")
        labels = parse_label_list(data["labels"]) if data.get("labels") is not None else None
        description = data.get("description")
        if description is not None and not isinstance(description, str):
            raise LinkisAPIError(f"description must be a string, got {type(description).__name__}.")
        if description is not None and len(description) > 256:
            raise LinkisAPIError(f"description is too long ({len(description)} characters, at most 256).")
        ecm = update_ecm_info(
            _ecm(instance),
            actor=_caller(request),
            via="api",
            health=health,
            labels=labels,
            description=description,
            reason="set through modifyEMInfo",
        )
        return linkis_response(request, {"nodeHealthy": ecm.health}, message="success")


class _EcmOperationView(LinkisAPIView):
    """The ECM operators: engineConnLog (a page of an engine's log) and engineConnYarnLog (its
    yarnApp log)."""

    def operate(
        self, request: Request, parameters: dict[str, Any], *, ecm: EngineConnManager | None, engine: str | None
    ) -> Response:
        name = parameters.get(OPERATOR_NAME)
        if name is None or name == "":
            raise LinkisAPIError(f"{OPERATOR_NAME} does not exist", code=OPERATOR_CODE)
        if not isinstance(name, str) or name not in OPERATORS:
            raise LinkisAPIError(f"Unknown ECM operator {name!r:.60}; supported: {', '.join(OPERATORS)}.")
        if OPERATORS[name] is not None:
            parameters = {**parameters, "logType": OPERATORS[name]}
        query = _log_query(parameters, default_tail=False)
        answer = read_engine_log(
            caller=_caller(request),
            is_admin=request_is_admin(request),
            query=query,
            engine_instance=engine,
            ecm=ecm,
            log_dir_suffix=_log_dir_suffix(parameters),
            timeout=settings.ECM_TASK_TIMEOUT,
        )
        return linkis_response(request, answer)


class ExecuteECMOperationView(_EcmOperationView):
    """Run an ECM operator on the ECM named by ``instance``."""

    @linkis_schema(
        "executeECMOperation",
        summary="Run an ECM operator",
        request=EcmOperationSerializer,
        data=_operation_data,
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        data = body_object(request.data)
        _, instance = require_instance(data)
        parameters = _parameters(data)
        engine = parameters.get("engineConnInstance")
        if engine is not None and not isinstance(engine, str):
            raise LinkisAPIError(f"parameters.engineConnInstance must be a string, got {type(engine).__name__}.")
        return self.operate(request, parameters, ecm=find_ecm(instance), engine=(engine or "").strip() or None)


class ExecuteECMOperationByECView(_EcmOperationView):
    """Run an ECM operator for the engine named by ``instance``, on its ECM (owner or admin)."""

    @linkis_schema(
        "executeECMOperationByEC",
        summary="Run an ECM operator for an engine",
        request=EcmOperationByEcSerializer,
        data=_operation_data,
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        data = body_object(request.data)
        _, instance = require_instance(data)
        parameters = _parameters(data)
        engine = EngineConn.objects.select_related("ecm").by_instance(instance)
        if engine is None:
            if EngineConnManager.objects.filter(instance=instance).exists():
                raise LinkisAPIError(f"{instance} is an ECM ({ECM_APPLICATION_NAME}), not an engine.")
            raise LinkisAPIError(f"Engine {instance} does not exist.")
        if engine.owner != _caller(request) and not request_is_admin(request):
            engine_text = service_instance_text(ENGINE_APPLICATION_NAME, instance)
            raise LinkisAPIError(f"You have no permission to execute ECM Operation by this EngineConn {engine_text}")
        return self.operate(request, parameters, ecm=engine.ecm, engine=instance)


class OpenEngineLogView(LinkisAPIView):
    """A page of an engine's log, read by its ECM's agent (owner or admin)."""

    @linkis_schema(
        "openEngineLog",
        summary="Read an engine's log",
        request=OpenEngineLogSerializer,
        data=_operation_data,
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        data = body_object(request.data)
        _, instance = require_instance(data)
        em_instance = optional_text(data, "emInstance")
        parameters = _parameters(data)
        query = _log_query(parameters, default_tail=True)
        answer = read_engine_log(
            caller=_caller(request),
            is_admin=request_is_admin(request),
            query=query,
            engine_instance=instance,
            ecm=find_ecm(em_instance) if em_instance else None,
            log_dir_suffix=_log_dir_suffix(parameters),
            timeout=settings.ECM_TASK_TIMEOUT,
        )
        return linkis_response(request, answer)


class TaskPredictionView(LinkisAPIView):
    """Whether a new engine would be admitted now: the user's quota and an ECM's capacity."""

    @linkis_schema(
        "taskPrediction",
        summary="Forecast an engine's admission",
        data={
            "tenant": serializers.CharField(allow_null=True),
            "userResource": serializers.CharField(help_text="JSON text of what the user's quota has left."),
            "ecmResource": serializers.CharField(
                allow_null=True, help_text="JSON text of what the chosen ECM has left; null when none matches."
            ),
            "yarnResource": serializers.CharField(allow_null=True, help_text="Always null: no YARN engines."),
            "checkResult": serializers.BooleanField(help_text="false when the quota or every ECM is short."),
            "reason": serializers.CharField(help_text="Why checkResult is false; empty otherwise."),
            "ecmInstance": serializers.CharField(allow_null=True),
            "requestResource": LoadInstanceSerializer(),
        },
        parameters=[
            OpenApiParameter("username", str, required=False, description="Default: the caller (others: admins)."),
            OpenApiParameter("engineType", str, required=True, description="<type>-<version>, e.g. python-python3."),
            OpenApiParameter("creator", str, required=True, description="e.g. IDE"),
            OpenApiParameter("tenant", str, required=False),
            OpenApiParameter("clustername", str, required=False, description="Accepted, unused."),
            OpenApiParameter("queueName", str, required=False, description="Accepted, unused."),
        ],
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        caller = _caller(request)
        user = _query_text(request, "username") or caller
        engine_type_text = _query_text(
            request,
            "engineType",
            required_message="parameters:engineType can't be null (请求参数【engineType】不能为空)",
        )
        creator = _query_text(
            request, "creator", required_message="parameters:creator can't be null (请求参数【creator】不能为空)"
        )
        engine_type, version = parse_engine_type(engine_type_text)
        format_user_creator(user, creator)
        tenant = _query_text(request, "tenant")
        if tenant is not None:
            tenant = validate_label(TENANT, tenant)
        if user != caller and not request_is_admin(request):
            raise LinkisAPIError(
                f"Only admin can forecast engines of another user ({user})(只有管理员才能查询其他用户)", code=ADMIN_CODE
            )
        prediction = predict_engine(user, creator, engine_type, version, tenant=tenant)
        return linkis_response(
            request,
            {
                "tenant": tenant,
                "userResource": json.dumps(prediction.user_left.to_json()),
                "ecmResource": json.dumps(prediction.ecm_left.to_json()) if prediction.ecm_left is not None else None,
                "yarnResource": None,
                "checkResult": prediction.admitted,
                "reason": prediction.reason,
                "ecmInstance": prediction.ecm.instance if prediction.ecm is not None else None,
                "requestResource": prediction.request.to_json(),
            },
        )


class ResetResourceView(LinkisAPIView):
    """Recompute the used and locked figures of ECMs and users (admins only). They are derived from
    live engines, so nothing is rewritten; the answer shows them."""

    permission_classes = [LinkisAdminOnly]
    admin_denied_message = ONLY_ADMIN_RESET
    # Linkis changes state on this GET: the cross-site check applies as to an unsafe request.
    changes_state_on_get = True

    @linkis_schema(
        "resetResource",
        summary="Recompute resource figures",
        data={
            "ecms": serializers.ListField(child=serializers.DictField()),
            "users": serializers.ListField(child=serializers.DictField()),
        },
        parameters=[
            OpenApiParameter("serviceInstance", str, required=False, description="An ECM instance, or * for all."),
            OpenApiParameter("username", str, required=False, description="A user, or * for all."),
        ],
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        ecm_instance = _query_text(request, "serviceInstance")
        if ecm_instance not in (None, ALL):
            _ecm(ecm_instance)
        figures = recompute_resources(
            ecm_instance=ecm_instance, user=_query_text(request, "username"), actor=_caller(request), via="api"
        )
        return linkis_response(
            request,
            {
                "ecms": [
                    {
                        "instance": ecm.instance,
                        **resource_json(capacity.maximum, capacity.reserve, capacity.used, capacity.locked),
                    }
                    for ecm, capacity in figures.ecms
                ],
                "users": [
                    {
                        "username": row.user,
                        "creator": row.creator,
                        "engineTypeWithVersion": row.engine_type,
                        "maxResource": row.maximum.to_json(),
                        "usedResource": row.used.to_json(),
                        "lockedResource": row.locked.to_json(),
                        "leftResource": row.left.to_json(),
                    }
                    for row in figures.users
                ],
            },
        )
