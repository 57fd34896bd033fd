"""Engine lists, edits, operations and batch kills (EngineRestfulApi and rm/*).

Listing: ``listUserEngines`` (the caller's live engines), ``listEMEngines`` (an ECM's engines,
admin). Editing: ``modifyEngineInfo`` and ``batchSetEngineToUnHealthy`` (admin). Operations:
``executeEngineConnOperation`` (owner or admin). Batch kills: ``rm/enginekillAsyn``,
``rm/killUnlockEngineByEM`` (admin) and ``rm/killEngineByCreatorEngineType`` (the caller's own
engines). Batch requests are checked whole before anything changes.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines.api.list_serializers import (
    BatchSetEngineToUnHealthySerializer,
    EngineKillAsyncSerializer,
    EngineOperationSerializer,
    KillEngineByCreatorEngineTypeSerializer,
    KillUnlockEngineByEMSerializer,
    ListEMEnginesSerializer,
    ModifyEngineInfoSerializer,
)
from engines.api.lookup import PERMISSION_CODE, engine_for_instance, service_instance_text
from engines.api.serializers import engine_node, engine_vo, label_pairs
from engines.filtersets import EMEnginesFilterSet
from engines.models import EngineConn
from engines.remote import EngineUnreachableError, call_engine
from engines.services import kill_if_unlock, record_user_activity
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.labels import USER_CREATOR, parse_label_list, replace_modifiable
from linkismanager.linkis.envelope import linkis_response
from linkismanager.linkis.exceptions import LinkisAPIError, flatten_errors
from linkismanager.linkis.fields import INSTANCE_CODE, body_object, optional_text, require_instance, require_text
from linkismanager.linkis.permissions import IsLinkisAdmin, request_is_admin
from linkismanager.linkis.schema import linkis_schema
from linkismanager.linkis.views import LinkisAPIView
from linkismanager.models import EngineConnManager, Token
from linkismanager.services import audit, ecm_capacities, set_labels, set_pinned_health

__all__ = [
    "BatchSetEngineToUnHealthyView",
    "EngineKillAsyncView",
    "ExecuteEngineConnOperationView",
    "KillEngineByCreatorEngineTypeView",
    "KillUnlockEngineByEMView",
    "ListEMEnginesView",
    "ListUserEnginesView",
    "ModifyEngineInfoView",
]

logger = logging.getLogger(__name__)

UPDATE_MESSAGE = "success to update engine information(更新引擎信息成功)"
BATCH_UPDATE_MESSAGE = "success to update engine information(批量更新引擎健康信息成功)"
KILL_MESSAGE = "Kill engineConn succeed."

# Operators of executeEngineConnOperation.
OPERATOR_KEY = "__operator_name__"
EXECUTE = "execute"
ENGINE_CONN_STATUS = "engineConnStatus"
YARN_APPLICATION = "engineConnYarnApplication"
OPERATORS = (EXECUTE, ENGINE_CONN_STATUS, YARN_APPLICATION)

# The console's names for "every creator" in killEngineByCreatorEngineType.
ANY = "*"
GLOBAL_CREATORS = frozenset({ANY, "全局设置", "通用设置", "GlobalSettings"})
# Engines shared by many users: a user's settings change must not stop them.
MULTI_USER_ENGINE_TYPES = ("trino", "appconn", "io_file", "nebula", "jdbc")

_engines_data = {"engines": serializers.ListField(child=serializers.DictField())}


def _actor(request: Request) -> str:
    return request.user.get_username()


def _field(data: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    """A required object nested in the body, named by its full path in errors."""
    value = data.get(name)
    if value is None:
        raise LinkisAPIError(f"{path} cannot be null(请求参数{path}不能为空)")
    return body_object(value, what=f"field {path}")


class _EngineAPIView(LinkisAPIView):
    """Refusals of admin-only endpoints carry Linkis' code 210003 and the endpoint's own wording."""

    admin_denied_message = "Only admin can do this operation(只有管理员才能操作)"

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated()
        raise LinkisAPIError(message or self.admin_denied_message, code=PERMISSION_CODE)


def _live_engine(instance: str, doing: str) -> EngineConn:
    """The live engine at ``instance``; an ended one (or an ECM, or nothing) is a clean error."""
    engine = engine_for_instance(instance)
    if not engine.is_live:
        raise LinkisAPIError(f"Engine {instance} has already ended ({engine.status}); it cannot be {doing}.")
    return engine


# --- Lists -------------------------------------------------------------------------------------------


class ListUserEnginesView(_EngineAPIView):
    """The caller's engines that are still registered (not ended), whatever their status."""

    @linkis_schema(
        "listUserEngines",
        summary="The caller's live engines (EngineNode maps)",
        data=_engines_data,
        tags=["engines"],
    )
    def get(self, request: Request) -> Response:
        engines = list(
            EngineConn.objects.live().filter(owner=_actor(request)).select_related("ecm").order_by("-created", "-pk")
        )
        labels = label_pairs(engines)
        return linkis_response(request, {"engines": [engine_node(engine, labels[engine.pk]) for engine in engines]})


class ListEMEnginesView(_EngineAPIView):
    """The live engines of one ECM, filtered, with the ECM's real capacity (admin)."""

    permission_classes = [IsLinkisAdmin]
    admin_denied_message = "Only admin can search engine information(只有管理员才能查询所有引擎信息)"

    @linkis_schema(
        "listEMEngines",
        summary="The engines of an ECM (AMEngineNodeVo rows)",
        request=ListEMEnginesSerializer,
        data=_engines_data,
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        body = body_object(request.data)
        service = _field(_field(body, "em", "em"), "serviceInstance", "em.serviceInstance")
        instance = require_text(
            service,
            "instance",
            code=INSTANCE_CODE,
            message="em.serviceInstance.instance cannot be null(请求参数em.serviceInstance.instance不能为空)",
        )
        optional_text(service, "applicationName")  # accepted in any spelling; only its type is checked
        filters = {}
        for name in EMEnginesFilterSet.base_filters:
            value = optional_text(body, name)
            if value is not None:
                filters[name] = value

        ecm = EngineConnManager.objects.filter(instance=instance).first()
        if ecm is None:
            if EngineConn.objects.filter(instance=instance).exists():
                raise LinkisAPIError(f"{instance} is an engine instance, not an ECM instance.")
            # As Linkis: an ECM that is not (or no longer) registered has no engines.
            return linkis_response(request, {"engines": []})

        engines = EngineConn.objects.live().filter(ecm=ecm)
        filterset = EMEnginesFilterSet(data=filters, queryset=engines.order_by("-created", "-pk"))
        if not filterset.is_valid():
            raise LinkisAPIError("; ".join(flatten_errors(filterset.errors)))
        capacity = ecm_capacities([ecm])[ecm.pk]
        rows = list(filterset.qs)
        labels = label_pairs(rows)
        for engine in rows:
            engine.ecm = ecm  # the ECM already read, rather than a join and a copy per row
        return linkis_response(
            request, {"engines": [engine_vo(engine, capacity, labels[engine.pk]) for engine in rows]}
        )


# --- Edits -------------------------------------------------------------------------------------------


def _health_name(body: dict[str, Any]) -> str | None:
    """``nodeHealthy``: a NodeHealthy name, or None (absent or empty) for no change."""
    value = optional_text(body, "nodeHealthy")
    if value is not None and value not in NodeHealthy.values:
        raise LinkisAPIError(
            f"nodeHealthy {value!r} is not a NodeHealthy name; expected one of {', '.join(NodeHealthy.values)}."
        )
    return value


class ModifyEngineInfoView(_EngineAPIView):
    """Replace an engine's user-modifiable labels and/or set its health (admin).

    Everything is checked before anything is written, and the writes share one transaction.
    """

    permission_classes = [IsLinkisAdmin]
    admin_denied_message = "Only admin can modify engineConn information(只有管理员才能修改引擎信息)"

    @linkis_schema(
        "modifyEngineInfo",
        summary="Edit an engine's labels and health",
        request=ModifyEngineInfoSerializer,
        tags=["engines"],
    )
    def put(self, request: Request) -> Response:
        body = body_object(request.data)
        _, instance = require_instance(body)
        requested = None if body.get("labels") is None else parse_label_list(body["labels"])
        health = _health_name(body)
        # emStatus is ignored: the console puts the engine's NodeStatus there, which is not editable.
        engine = _live_engine(instance, "modified")
        actor = _actor(request)
        with transaction.atomic():
            engine = EngineConn.objects.select_for_update().get(pk=engine.pk)
            if requested is not None:
                current = {label.key: label.value for label in engine.labels.all()}
                wanted = replace_modifiable(current, requested)
                # The userCreator of an engine is who owns it: that stays what the engine was made for.
                if wanted.get(USER_CREATOR, engine.user_creator) != engine.user_creator:
                    raise LinkisAPIError(
                        f"The userCreator of engine {instance} is its owner and creator ({engine.user_creator}); "
                        "it cannot be changed."
                    )
                if USER_CREATOR in current:
                    wanted[USER_CREATOR] = current[USER_CREATOR]
                if wanted != current:
                    set_labels(engine, wanted, remove_missing=True)
                    audit(
                        actor=actor,
                        via="api",
                        action="set_labels",
                        target_type="engine",
                        target=str(engine),
                        before=current,
                        after=wanted,
                    )
            if health is not None:
                set_pinned_health(engine, health, actor=actor, reason="set with modifyEngineInfo")
        return linkis_response(request, message=UPDATE_MESSAGE)


class BatchSetEngineToUnHealthyView(_EngineAPIView):
    """Pin engines UnHealthy (admin): every element is checked first, then all are pinned together."""

    permission_classes = [IsLinkisAdmin]
    admin_denied_message = "Only admin can modify engineConn healthy info(只有管理员才能修改引擎健康信息)"

    @linkis_schema(
        "batchSetEngineToUnHealthy",
        summary="Mark engines UnHealthy",
        request=BatchSetEngineToUnHealthySerializer,
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        body = body_object(request.data)
        items = body.get("instances")
        if not isinstance(items, list):
            raise LinkisAPIError(
                "instances is null in the parameters of the request(请求参数中【instances】为空): "
                "send a list of {applicationName, instance, engineType}."
            )
        engines: dict[int, EngineConn] = {}
        for index, item in enumerate(items):
            element = body_object(item, what=f"element instances[{index}]")
            _, instance = require_instance(element)
            engine = _live_engine(instance, "marked UnHealthy")
            engines[engine.pk] = engine
        actor = _actor(request)
        with transaction.atomic():
            for engine in engines.values():
                set_pinned_health(
                    engine, NodeHealthy.UNHEALTHY, actor=actor, reason="set with batchSetEngineToUnHealthy"
                )
        return linkis_response(request, message=BATCH_UPDATE_MESSAGE)


# --- Operations ---------------------------------------------------------------------------------------


def _call(engine: EngineConn, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
    """A control-port request through the engine's agent; any failure to get an answer is a clean error."""
    try:
        answer = call_engine(engine, method, path, body)
    except EngineUnreachableError as exc:
        raise LinkisAPIError(f"Engine {engine.instance} is unreachable: {exc.message}") from None
    except Exception:
        # The broker or the agent's task failed: the outside world, not this request. Logged for staff.
        logger.exception("Call %s %s to engine %s failed", method, path, engine.instance)
        raise LinkisAPIError(
            f"Engine {engine.instance} could not be reached through ECM {engine.ecm.instance}; "
            "the failure has been logged."
        ) from None
    if "httpStatus" in answer:
        problem = answer.get("error") or f"HTTP {answer['httpStatus']}"
        raise LinkisAPIError(f"Engine {engine.instance} refused the operation: {problem}.")
    return answer


class ExecuteEngineConnOperationView(_EngineAPIView):
    """Run an operator on an engine (owner or admin), selected by ``parameters.__operator_name__``.

    ``execute`` runs ``parameters.code``; ``engineConnStatus`` answers what the runtime reports;
    ``engineConnYarnApplication`` answers ``isError`` (no engine here runs on YARN).
    """

    @linkis_schema(
        "executeEngineConnOperation",
        summary="Run an operator on an engine",
        request=EngineOperationSerializer,
        data={
            "result": serializers.DictField(required=False),
            "isError": serializers.BooleanField(),
            "errorMsg": serializers.CharField(allow_blank=True),
        },
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        body = body_object(request.data)
        _, instance = require_instance(body)
        parameters = _field(body, "parameters", "parameters")
        operator = require_text(parameters, OPERATOR_KEY)
        if operator not in OPERATORS:
            raise LinkisAPIError(f"Unknown operator {operator!r}; the engines here support {', '.join(OPERATORS)}.")
        code = require_text(parameters, "code") if operator == EXECUTE else None

        engine = engine_for_instance(instance)
        if engine.owner != _actor(request) and not request_is_admin(request):
            raise LinkisAPIError(
                f"You have no permission to execute Engine Operation {service_instance_text(instance)}"
            )
        if not engine.is_live or engine.is_terminal:
            raise LinkisAPIError(f"Engine {instance} is {engine.status}; it can no longer run operations.")

        if operator == YARN_APPLICATION:
            message = (
                f"Engine {instance} ({engine.engine_type_label}) does not run on YARN; it has no YARN application."
            )
            return linkis_response(request, {"isError": True, "errorMsg": message})
        if operator == ENGINE_CONN_STATUS:
            answer = _call(engine, "GET", "/status")
            return linkis_response(request, {"result": answer, "errorMsg": "", "isError": False})
        # A code run is a user action: the idle clock moves now, not at the agent's next
        # heartbeat, so the idle sweep cannot cull an engine that is about to run code.
        record_user_activity(engine.pk)
        answer = _call(engine, "POST", "/execute", {"code": code})
        failed = not answer.get("ok", False)
        return linkis_response(
            request,
            {"result": answer, "errorMsg": (answer.get("error") or "code failed") if failed else "", "isError": failed},
        )


# --- Batch kills -----------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What a batch kill did: the engines moved to ShuttingDown, and those left alone with why."""

    killed: list[EngineConn] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, instance: str, reason: str, status: str | None = None) -> None:
        self.skipped.append({"instance": instance, "reason": reason, "nodeStatus": status})

    def skipped_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.skipped:
            counts[item["reason"]] = counts.get(item["reason"], 0) + 1
        return counts


def _kill_if_unlock(engine: EngineConn, outcome: _Outcome, *, actor: str, reason: str) -> bool:
    """Kill ``engine`` if it is Unlock now; otherwise note why not."""
    if engine.status != NodeStatus.UNLOCK:
        outcome.skip(engine.instance, "notUnlock", engine.status)
        return False
    if not kill_if_unlock(engine, actor=actor, reason=reason):
        engine.refresh_from_db(fields=["status"])
        outcome.skip(engine.instance, "changedMeanwhile", engine.status)
        return False
    outcome.killed.append(engine)
    return True


def _batch_kill_allowed(engine: EngineConn) -> bool:
    return engine.engine_type.lower() in {name.lower() for name in settings.BATCH_KILL_ENGINE_TYPES}


class EngineKillAsyncView(_EngineAPIView):
    """Kill the named engines that are Unlock at this moment (admin, or an admin token).

    Answers at once: the kills run on the engines' agents after the answer.
    """

    @linkis_schema(
        "enginekillAsyn",
        summary="Kill idle (Unlock) engines by instance",
        request=EngineKillAsyncSerializer,
        data={
            "killEngineNum": serializers.IntegerField(),
            "killed": serializers.ListField(child=serializers.CharField()),
            "skippedEngineNum": serializers.IntegerField(),
            "skipped": serializers.ListField(child=serializers.DictField(), help_text="{instance, reason, nodeStatus}"),
        },
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        if not request_is_admin(request):
            if isinstance(request.auth, Token):
                raise LinkisAPIError(f"Token:{request.auth.name} has no permission to asyn kill engines.")
            raise LinkisAPIError(f"User:{_actor(request)} has no permission to asyn kill engines.")
        body = body_object(request.data)
        items = body.get("instances")
        if not isinstance(items, list) or not items:
            raise LinkisAPIError("instances is null in the parameters of the request(请求参数中【instances】为空)")
        instances: list[str] = []
        for index, item in enumerate(items):
            if not isinstance(item, str) or not item.strip() or len(item.strip()) > 128:
                raise LinkisAPIError(
                    "instances parameters parsing failed(请求参数【instances】解析失败): "
                    f"instances[{index}] must be an engine instance (host:port), got {item!r:.80}."
                )
            if item.strip() not in instances:
                instances.append(item.strip())
        ecms = set(EngineConnManager.objects.filter(instance__in=instances).values_list("instance", flat=True))
        if ecms:
            raise LinkisAPIError(f"{', '.join(sorted(ecms))}: ECM instances, not engine instances; nothing was killed.")

        actor = _actor(request)
        outcome = _Outcome()
        for instance in instances:
            engine = EngineConn.objects.select_related("ecm").by_instance(instance)
            if engine is None:
                outcome.skip(instance, "notFound")
            elif not engine.is_live:
                outcome.skip(instance, "ended", engine.status)
            else:
                _kill_if_unlock(engine, outcome, actor=actor, reason="rm/enginekillAsyn")
        return linkis_response(
            request,
            {
                "killEngineNum": len(outcome.killed),
                "killed": [engine.instance for engine in outcome.killed],
                "skippedEngineNum": len(outcome.skipped),
                "skipped": outcome.skipped,
            },
            message=KILL_MESSAGE,
        )


class KillUnlockEngineByEMView(_EngineAPIView):
    """Kill the Unlock engines of one ECM whose type is open to batch kills (admin)."""

    permission_classes = [IsLinkisAdmin]
    admin_denied_message = (
        "Only admin can kill unlock engine of the specified ecm(只有管理员才能 kill 指定 ecm 下的所有空闲引擎)"
    )

    @linkis_schema(
        "killUnlockEngineByEM",
        summary="Kill the idle engines of an ECM",
        request=KillUnlockEngineByEMSerializer,
        data={
            "result": serializers.DictField(
                help_text="killEngineNum, memory (bytes), cores, batchKillEngineType, killedEngines, "
                "skippedEngineNum, skipped (counts by reason)"
            )
        },
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        body = body_object(request.data)
        instance = require_text(
            body,
            "instance",
            code=PERMISSION_CODE,
            message="instance is null in the parameters of the request(请求参数中【instance】为空)",
        )
        ecm = EngineConnManager.objects.filter(instance=instance).first()
        if ecm is None:
            if EngineConn.objects.filter(instance=instance).exists():
                raise LinkisAPIError(f"{instance} is an engine instance, not an ECM instance.")
            raise LinkisAPIError(f"ECM {instance} does not exist; nothing was killed.")

        actor = _actor(request)
        outcome = _Outcome()
        for engine in EngineConn.objects.live().filter(ecm=ecm).select_related("ecm").order_by("pk"):
            if not _batch_kill_allowed(engine):
                outcome.skip(engine.instance, "engineTypeNotAllowed", engine.status)
            else:
                _kill_if_unlock(engine, outcome, actor=actor, reason=f"rm/killUnlockEngineByEM {instance}")
        result = {
            "killEngineNum": len(outcome.killed),
            "memory": sum(engine.memory for engine in outcome.killed),
            "cores": sum(engine.cores for engine in outcome.killed),
            "batchKillEngineType": ",".join(settings.BATCH_KILL_ENGINE_TYPES),
            "killedEngines": [engine.instance for engine in outcome.killed],
            "skippedEngineNum": len(outcome.skipped),
            "skipped": outcome.skipped_counts(),
        }
        return linkis_response(request, {"result": result}, message=KILL_MESSAGE)


def _manager_os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _matches_engine_type(engine: EngineConn, wanted: str) -> bool:
    """``*`` any type; ``spark`` the type in any case; ``spark-2.4.3`` type and version."""
    if wanted == ANY:
        return True
    engine_type, dash, version = wanted.partition("-")
    if engine.engine_type.lower() != engine_type.lower():
        return False
    return not dash or engine.engine_version == version


class KillEngineByCreatorEngineTypeView(_EngineAPIView):
    """Stop the caller's own engines of a creator and engine type (after a settings change).

    Unlock engines of a type open to batch kills are killed; the others are marked UnHealthy, so
    they are not reused and end once their current work is done. ``*`` (or an empty engineType)
    means any creator / any engine type.
    """

    @linkis_schema(
        "killEngineByCreatorEngineType",
        summary="Stop the caller's engines of a creator and engine type",
        request=KillEngineByCreatorEngineTypeSerializer,
        data={
            "killEngineNum": serializers.IntegerField(),
            "killed": serializers.ListField(child=serializers.CharField()),
            "unHealthyEngineNum": serializers.IntegerField(),
            "markedUnHealthy": serializers.ListField(child=serializers.CharField()),
            "skippedEngineNum": serializers.IntegerField(),
            "skipped": serializers.ListField(child=serializers.DictField()),
        },
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        user = _actor(request)
        os_user = _manager_os_user()
        if os_user is not None and user == os_user:
            raise LinkisAPIError(f"{os_user} users do not support this feature ({os_user} 用户不支持此功能)")
        body = body_object(request.data)
        creator = require_text(
            body, "creator", message="creator is null in the parameters of the request(请求参数中【creator】为空)"
        )
        engine_type = optional_text(body, "engineType") or ANY
        if any(name in engine_type.lower() for name in MULTI_USER_ENGINE_TYPES):
            raise LinkisAPIError("multi user engine does not support this feature(多用户引擎不支持此功能)")
        if creator in GLOBAL_CREATORS:
            creator = ANY

        engines = EngineConn.objects.live().filter(owner=user).select_related("ecm").order_by("pk")
        if creator != ANY:
            engines = engines.filter(creator=creator)
        selected = [engine for engine in engines if _matches_engine_type(engine, engine_type)]

        reason = f"rm/killEngineByCreatorEngineType {creator},{engine_type}"
        outcome = _Outcome()
        unhealthy: list[EngineConn] = []
        with transaction.atomic():
            for engine in selected:
                if engine.is_terminal:
                    outcome.skip(engine.instance or str(engine.ticket_id), "alreadyStopping", engine.status)
                    continue
                if _batch_kill_allowed(engine) and engine.status == NodeStatus.UNLOCK:
                    if kill_if_unlock(engine, actor=user, reason=reason):
                        outcome.killed.append(engine)
                        continue
                    engine.refresh_from_db(fields=["status"])
                    if engine.is_terminal:
                        outcome.skip(engine.instance, "alreadyStopping", engine.status)
                        continue
                set_pinned_health(engine, NodeHealthy.UNHEALTHY, actor=user, reason=reason)
                unhealthy.append(engine)
        return linkis_response(
            request,
            {
                "killEngineNum": len(outcome.killed),
                "killed": [engine.instance for engine in outcome.killed],
                "unHealthyEngineNum": len(unhealthy),
                "markedUnHealthy": [engine.instance or str(engine.ticket_id) for engine in unhealthy],
                "skippedEngineNum": len(outcome.skipped),
                "skipped": outcome.skipped,
            },
            message="Kill engineConn succeed",
        )
