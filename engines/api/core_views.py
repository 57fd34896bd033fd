"""Creating, asking for, reading and killing engines (Linkis' EngineRestfulApi, core part)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines.api.core_serializers import (
    AskEngineSerializer,
    CreateEngineSerializer,
    EngineKillItemSerializer,
    GetEngineSerializer,
    ServiceInstanceSerializer,
)
from engines.api.lookup import engine_for_instance, ensure_owner_or_admin, find_engine, service_instance_text
from engines.api.serializers import created_engine_map, engine_node, history_node
from engines.exceptions import AdmissionError
from engines.models import EngineConn, EngineHistory
from engines.remote import EngineUnreachableError, call_engine
from engines.services import (
    EngineRequest,
    admit_engine,
    default_resources,
    record_user_activity,
    request_engine_kill,
    set_runtime_status,
)
from engines.waits import wait_for_end, wait_for_start
from linkismanager.choices import AVAILABLE_HEALTH, NodeStatus
from linkismanager.labels import (
    ENGINE_APPLICATION_NAME,
    ENGINE_TYPE,
    EXECUTE_ONCE,
    REUSE_EXCLUSION,
    SERVER_ALIAS,
    USER_CREATOR,
    core_match,
    parse_engine_type,
    parse_label_list,
    parse_user_creator,
)
from linkismanager.linkis.envelope import STATUS_ERROR, linkis_response
from linkismanager.linkis.exceptions import LinkisAPIError
from linkismanager.linkis.fields import body_object, require_instance
from linkismanager.linkis.permissions import request_is_admin
from linkismanager.linkis.schema import linkis_schema
from linkismanager.linkis.views import LinkisAPIView
from linkismanager.resources import LoadInstance, ResourceError, parse_size

__all__ = ["AskEngineView", "CreateEngineView", "EngineKillView", "GetEngineView", "KillEngineView"]

LABELS_CODE = 30002
PERMISSION_CODE = 210003
# Request properties that size the engine: Linkis' driver settings, and short forms.
MEMORY_PROPERTIES = ("wds.linkis.engineconn.java.driver.memory", "engine.memory")
CORES_PROPERTIES = ("wds.linkis.engineconn.java.driver.cores", "engine.cores")

_engine_data = {
    "engine": serializers.DictField(help_text="serviceInstance, nodeStatus, ticketId, ecmServiceInstance …")
}


def _wait_seconds(milliseconds: int | None) -> float:
    """The request's wait in seconds: ≤ 0 or absent means the default; never above the maximum."""
    if milliseconds is None or milliseconds <= 0:
        return settings.ENGINE_CREATE_WAIT_DEFAULT
    return min(milliseconds / 1000, settings.ENGINE_CREATE_WAIT_MAX)


def _resources(engine_type: str, properties: dict[str, str]) -> LoadInstance:
    base = default_resources(engine_type)
    memory, cores = base.memory, base.cores
    try:
        for name in MEMORY_PROPERTIES:
            if properties.get(name):
                memory = parse_size(properties[name], field=f"properties.{name}")
        for name in CORES_PROPERTIES:
            if properties.get(name):
                text = properties[name].strip()
                if not text.isdigit() or int(text) < 1 or int(text) > 1024:
                    raise ResourceError(
                        f"properties.{name} must be a whole number of cores from 1 to 1024, got {text!r}"
                    )
                cores = int(text)
    except ResourceError as exc:
        raise LinkisAPIError(str(exc)) from None
    return LoadInstance(memory, cores, 1)


def parse_engine_request(request: Request, form: serializers.Serializer) -> EngineRequest:
    """The validated request: labels engineType and userCreator required; the user must be the
    caller unless the caller is an admin."""
    labels = parse_label_list(form.validated_data["labels"])
    if ENGINE_TYPE not in labels or USER_CREATOR not in labels:
        raise LinkisAPIError("Need to specify engineType and userCreator label", code=LABELS_CODE)
    user, creator = parse_user_creator(labels[USER_CREATOR])
    engine_type, version = parse_engine_type(labels[ENGINE_TYPE])
    caller = request.user.get_username()
    if user != caller and not request_is_admin(request):
        raise LinkisAPIError(
            f"User {caller} cannot create engines for user {user}: userCreator must name the caller",
            code=PERMISSION_CODE,
        )
    properties = dict(form.validated_data.get("properties") or {})
    return EngineRequest(
        user=user,
        creator=creator,
        engine_type=engine_type,
        engine_version=version,
        resources=_resources(engine_type, properties),
        labels=labels,
        properties=properties,
    )


def _failure(request: Request, cause: str, *, can_retry: bool) -> Response:
    return linkis_response(
        request,
        {"canRetry": can_retry},
        message=f"Create engineConn failed, caused by {cause.rstrip('.')}.",
        status=STATUS_ERROR,
    )


def _create_and_wait(request: Request, engine_request: EngineRequest, wait: float, *, ignore_timeout: bool):
    """Admit the engine and wait for it. Returns (engine, None) when ready, else (None, failure)."""
    try:
        engine = admit_engine(engine_request, actor=request.user.get_username(), via="api")
    except AdmissionError as exc:
        return None, _failure(request, str(exc.message), can_retry=exc.can_retry)
    if not wait_for_start(engine, wait):
        if ignore_timeout:
            return engine, None
        request_engine_kill(engine, actor=request.user.get_username(), reason="did not start in time", via="api")
        waited = int(wait * 1000)
        cause = (
            f"Waiting for engineNode:{engine.ticket_id} initialization TimeoutException, already waiting {waited} ms"
        )
        return None, _failure(request, cause, can_retry=True)
    if engine.status not in (NodeStatus.UNLOCK, NodeStatus.IDLE, NodeStatus.BUSY, NodeStatus.LOCKED):
        return None, _failure(request, engine.end_reason or f"the engine is {engine.status}", can_retry=False)
    return engine, None


class CreateEngineView(LinkisAPIView):
    """Create an engine for the caller, wait for it to be ready, answer its real status."""

    @linkis_schema(
        "createEngineConn",
        summary="Create an engine",
        request=CreateEngineSerializer,
        data=_engine_data,
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        form = CreateEngineSerializer(data=body_object(request.data))
        form.is_valid(raise_exception=True)
        engine_request = parse_engine_request(request, form)
        wait = _wait_seconds(form.validated_data.get("timeout"))
        engine, failure = _create_and_wait(
            request, engine_request, wait, ignore_timeout=form.validated_data.get("ignoreTimeout", False)
        )
        if failure is not None:
            return failure
        return linkis_response(request, {"engine": created_engine_map(engine)}, message="create engineConn succeed.")


def _lock(engine: EngineConn, *, timeout: float) -> str | None:
    """Lock an Unlock engine for the caller through its agent (which also proves it alive)."""
    try:
        answer = call_engine(engine, "POST", "/lock", {}, timeout=timeout)
    except EngineUnreachableError:
        return None
    if not answer.get("locked"):
        return None
    set_runtime_status(engine.pk, NodeStatus.IDLE, actor="api")
    record_user_activity(engine.pk)
    engine.refresh_from_db()
    return answer.get("lock")


def _reusable(engine_request: EngineRequest) -> list[EngineConn]:
    """Unlock engines of the same user, creator and type whose core labels match exactly."""
    labels = engine_request.labels
    if EXECUTE_ONCE in labels or labels.get(REUSE_EXCLUSION) == "*":
        return []
    excluded = {item.strip() for item in labels.get(REUSE_EXCLUSION, "").split(",") if item.strip()}
    # Engines carry the engine alias as a core label; the request matches it implicitly.
    wanted = {**labels, SERVER_ALIAS: ENGINE_APPLICATION_NAME}
    candidates = (
        EngineConn.objects.live()
        .filter(
            status=NodeStatus.UNLOCK,
            owner=engine_request.user,
            creator=engine_request.creator,
            engine_type=engine_request.engine_type,
            engine_version=engine_request.engine_version,
        )
        .exclude(instance="")
        .select_related("ecm")
        .prefetch_related("labels")
        .order_by("-last_activity")
    )
    found = []
    for engine in candidates:
        if engine.instance in excluded or engine.health not in AVAILABLE_HEALTH:
            continue
        if core_match(wanted, {label.key: label.value for label in engine.labels.all()}):
            found.append(engine)
        if len(found) >= settings.ENGINE_REUSE_CANDIDATES:
            break
    return found


class AskEngineView(LinkisAPIView):
    """Reuse an idle engine of the caller when one matches, else create one; lock it for the caller."""

    @linkis_schema(
        "askEngineConn",
        summary="Ask for an engine (reuse or create)",
        request=AskEngineSerializer,
        data=_engine_data,
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        form = AskEngineSerializer(data=body_object(request.data))
        form.is_valid(raise_exception=True)
        engine_request = parse_engine_request(request, form)
        wait = _wait_seconds(form.validated_data.get("timeOut"))
        for engine in _reusable(engine_request):
            lock = _lock(engine, timeout=min(wait, settings.ENGINE_CALL_TIMEOUT))
            if lock is not None:
                return linkis_response(
                    request, {"engine": {**created_engine_map(engine), "lock": lock}}, message="reuse engineConn ended."
                )
        engine, failure = _create_and_wait(request, engine_request, wait, ignore_timeout=False)
        if failure is not None:
            return failure
        lock = _lock(engine, timeout=settings.ENGINE_CALL_TIMEOUT)
        if lock is None:
            return linkis_response(
                request,
                {"canRetry": True},
                message=f"create engine {engine.instance} success, but to use engine failed.",
                status=STATUS_ERROR,
            )
        return linkis_response(
            request, {"engine": {**created_engine_map(engine), "lock": lock}}, message="create engineConn ended."
        )


class GetEngineView(LinkisAPIView):
    """One engine by instance (or ticket id); from its history record when the row is gone."""

    @linkis_schema(
        "getEngineConn",
        summary="Get an engine",
        request=GetEngineSerializer,
        data={**_engine_data, "ecMetrics": serializers.CharField(allow_null=True)},
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        data = body_object(request.data)
        _, instance = require_instance(data)
        ticket = data.get("ticketId")
        if ticket is not None and not isinstance(ticket, str):
            raise LinkisAPIError("ticketId must be a string.")
        engine = None
        if ticket:
            try:
                engine = EngineConn.objects.select_related("ecm").filter(ticket_id=uuid.UUID(ticket)).first()
            except ValueError:
                raise LinkisAPIError(f"ticketId {ticket!r} is not a valid ticket id.") from None
        if engine is None:
            engine = find_engine(instance)
        if engine is None:
            return self._from_history(request, instance, ticket)
        ensure_owner_or_admin(request, engine, "access")
        metrics = json.dumps(engine.metrics) if engine.metrics else None
        return linkis_response(request, {"engine": engine_node(engine), "ecMetrics": metrics})

    def _from_history(self, request: Request, instance: str, ticket: str | None) -> Response:
        records = EngineHistory.objects.all()
        record = (records.filter(ticket_id=ticket).first() if ticket else None) or records.filter(
            service_instance=instance
        ).order_by("-created").first()
        if record is None:
            raise LinkisAPIError(f"Instance does not exist {service_instance_text(instance)}")
        caller = request.user.get_username()
        if record.create_user != caller and not request_is_admin(request):
            raise LinkisAPIError(f"You have no permission to access EngineConn {service_instance_text(instance)}")
        metrics = json.dumps(record.metrics) if record.metrics else None
        return linkis_response(request, {"engine": history_node(record), "ecMetrics": metrics})


def _kill_and_wait(request: Request, engines: list[EngineConn]) -> dict[str, Any]:
    """Kill each engine (one compare-and-set each decides) and wait, bounded, for their ends."""
    actor = request.user.get_username()
    stopped, already = [], []
    for engine in engines:
        if request_engine_kill(engine, actor=actor, reason=f"killed by {actor}", via="api"):
            stopped.append(engine)
        else:
            already.append(engine)
    ended = wait_for_end(stopped + [e for e in already if e.ended_at is None], settings.ENGINE_KILL_WAIT)
    return {
        "killed": [engine.instance or str(engine.ticket_id) for engine in stopped],
        "alreadyStopped": [
            {"instance": engine.instance or str(engine.ticket_id), "status": engine.status} for engine in already
        ],
        "ended": ended,
    }


class KillEngineView(LinkisAPIView):
    """Kill one engine and wait (bounded) for its end, so the client can create again at once."""

    @linkis_schema(
        "killEngineConn",
        summary="Kill an engine",
        request=ServiceInstanceSerializer,
        data={
            "killed": serializers.ListField(),
            "alreadyStopped": serializers.ListField(),
            "ended": serializers.BooleanField(),
        },
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        _, instance = require_instance(body_object(request.data))
        engine = engine_for_instance(instance)
        ensure_owner_or_admin(request, engine, "kill")
        result = _kill_and_wait(request, [engine])
        if result["alreadyStopped"]:
            return linkis_response(
                request, result, message=f"EngineConn {instance} is already stopping/stopped ({engine.status})."
            )
        return linkis_response(request, result, message="Kill engineConn succeed.")


class EngineKillView(LinkisAPIView):
    """``rm/enginekill``: the console's stop button, for a list of engines. Every element is
    checked (it exists, the caller may kill it) before any is killed."""

    @linkis_schema(
        "rmEngineKill",
        summary="Kill engines (console stop)",
        request=EngineKillItemSerializer(many=True),
        data={
            "killed": serializers.ListField(),
            "alreadyStopped": serializers.ListField(),
            "ended": serializers.BooleanField(),
        },
        tags=["engines"],
    )
    def post(self, request: Request) -> Response:
        items = request.data
        if not isinstance(items, list) or not items:
            raise LinkisAPIError("The body must be a non-empty JSON array of {engineInstance, applicationName}.")
        form = EngineKillItemSerializer(data=items, many=True)
        form.is_valid(raise_exception=True)
        engines: list[EngineConn] = []
        for item in form.validated_data:
            engine = engine_for_instance(item["engineInstance"].strip())
            ensure_owner_or_admin(request, engine, "kill")
            if all(engine.pk != seen.pk for seen in engines):
                engines.append(engine)
        result = _kill_and_wait(request, engines)
        return linkis_response(request, result, message="Kill engineConn succeed.")
