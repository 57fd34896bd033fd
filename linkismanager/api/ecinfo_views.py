"""Engine history (Linkis' ECResourceInfoRestfulApi) under /api/rest_j/v1/linkisManager/ecinfo/."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines.models import EngineHistory
from linkismanager.api.console_views import is_history_admin
from linkismanager.api.ecinfo_serializers import (
    EcListRequest,
    HistoryQuery,
    TicketQuery,
    ec_item,
    history_record,
    history_vo,
)
from linkismanager.linkis.envelope import linkis_response
from linkismanager.linkis.exceptions import LinkisAPIError
from linkismanager.linkis.fields import body_object
from linkismanager.linkis.permissions import request_is_admin
from linkismanager.linkis.schema import linkis_schema
from linkismanager.linkis.views import LinkisAPIView
from linkismanager.models import Token
from linkismanager.services import audit
from linkismanager.usage import HistoryFilter, ec_list, history_page

__all__ = ["DeleteRecordLinkisView", "DeleteRecordView", "EcListView", "GetRecordView", "HistoryListView"]

TAGS = ["engine history"]

_record_data = {"ecResourceInfoRecord": serializers.DictField()}
_ticket_path = OpenApiParameter("ticketid", str, OpenApiParameter.PATH, description="The engine's ticket id.")


def _not_found(ticket_id: str) -> LinkisAPIError:
    # Linkis' text, typo included; also what a caller who may not see the record gets, so that
    # another user's ticket ids cannot be probed.
    return LinkisAPIError(f"tickedId not exist:{ticket_id}")


def _visible_record(request: Request, ticket_id: str, *, for_update: bool = False) -> EngineHistory:
    """The record of ``ticket_id`` if the caller created it (any case) or is an admin."""
    try:
        key = uuid.UUID(ticket_id.strip())
    except ValueError:
        raise LinkisAPIError(f"ticketid {ticket_id!r} is not a ticket id (a UUID).") from None
    records = EngineHistory.objects.select_for_update() if for_update else EngineHistory.objects
    record = records.filter(ticket_id=key).first()
    if record is None:
        raise _not_found(ticket_id)
    if record.create_user.lower() != request.user.get_username().lower() and not request_is_admin(request):
        raise _not_found(ticket_id)
    return record


class GetRecordView(LinkisAPIView):
    """One engine history record, for its user or an admin."""

    @linkis_schema(
        "ecinfoGet",
        summary="An engine history record",
        parameters=[OpenApiParameter("ticketid", str, OpenApiParameter.QUERY, required=True)],
        data=_record_data,
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        form = TicketQuery(data=request.query_params)
        form.is_valid(raise_exception=True)
        record = _visible_record(request, form.validated_data["ticketid"])
        return linkis_response(request, {"ecResourceInfoRecord": history_record(record)})


class DeleteRecordView(LinkisAPIView):
    """Delete one engine history record (its user or an admin); answers the record as it was."""

    @linkis_schema(
        "ecinfoDelete",
        summary="Delete an engine history record",
        parameters=[_ticket_path],
        data=_record_data,
        tags=TAGS,
    )
    def delete(self, request: Request, ticketid: str) -> Response:
        return self.delete_record(request, ticketid)

    def delete_record(self, request: Request, ticket_id: str) -> Response:
        with transaction.atomic():
            record = _visible_record(request, ticket_id, for_update=True)
            answer = history_record(record)
            record.delete()
            audit(
                actor=request.user.get_username(),
                via="api",
                action="delete_history",
                target_type="history",
                target=answer["ticketId"],
                before={"createUser": answer["createUser"], "status": answer["status"]},
            )
        return linkis_response(request, {"ecResourceInfoRecord": answer})


class DeleteRecordLinkisView(DeleteRecordView):
    """The same at Linkis' own path, ``delete/{ticketid}}``, stray brace included.

    Left out of the OpenAPI schema: a path template ending in ``}}`` is not valid OpenAPI, and
    ``delete/{ticketid}`` documents the same operation.
    """

    @extend_schema(exclude=True)
    def delete(self, request: Request, ticketid: str) -> Response:
        return self.delete_record(request, ticketid)


class HistoryListView(LinkisAPIView):
    """Engine history, newest first: the caller's own records, or, for job-history admins (every
    admin, and ``LINKIS_HISTORY_ADMIN_USERS``), everyone's or ``creator``'s."""

    @linkis_schema(
        "ecinfoHistoryList",
        summary="Engine history",
        description="`startDate` defaults to today 00:00 and `endDate` to now (server time zone). "
        "`totalPage` is the number of matching records, as Linkis names it.",
        parameters=[
            OpenApiParameter("instance", str, OpenApiParameter.QUERY, description="The engine instance, host:port."),
            OpenApiParameter("creator", str, OpenApiParameter.QUERY, description="Admins: the user whose records."),
            OpenApiParameter("startDate", str, OpenApiParameter.QUERY, description="yyyy-MM-dd HH:mm:ss"),
            OpenApiParameter("endDate", str, OpenApiParameter.QUERY, description="yyyy-MM-dd HH:mm:ss"),
            OpenApiParameter("engineType", str, OpenApiParameter.QUERY, description="python, or python-python3."),
            OpenApiParameter("status", str, OpenApiParameter.QUERY, description="A NodeStatus name."),
            OpenApiParameter("pageNow", int, OpenApiParameter.QUERY, description="From 1 (default 1)."),
            OpenApiParameter("pageSize", int, OpenApiParameter.QUERY, description="1–1000 (default 20)."),
        ],
        data={
            "engineList": serializers.ListField(child=serializers.DictField()),
            "totalPage": serializers.IntegerField(),
        },
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        form = HistoryQuery(data=request.query_params)
        form.is_valid(raise_exception=True)
        query = form.validated_data
        now = timezone.now()
        start = query.get("startDate") or timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        if is_history_admin(request):
            user = query.get("creator") or None
        else:
            user = request.user.get_username()
        spec = HistoryFilter(
            start=start,
            end=query.get("endDate") or now,
            user=user,
            instance=(query.get("instance") or "").strip() or None,
            engine_type=(query.get("engineType") or "").strip() or None,
            status=query.get("status") or None,
        )
        records, total = history_page(spec, page=query["pageNow"], size=query["pageSize"])
        return linkis_response(request, {"engineList": [history_vo(record) for record in records], "totalPage": total})


class EcListView(LinkisAPIView):
    """Live engines with their status and used resource, for admins and admin tokens."""

    @linkis_schema(
        "ecinfoEcList",
        summary="Live engines (admin or admin token)",
        request=EcListRequest,
        data={"ecList": serializers.ListField(child=serializers.DictField())},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        if not request_is_admin(request):
            token = request.auth if isinstance(request.auth, Token) else None
            # The token's name, never its code.
            who = f"Token {token.name}" if token is not None else f"User:{request.user.get_username()}"
            raise LinkisAPIError(f"{who} has no permission to query ecList.")
        form = EcListRequest(data=body_object(request.data))
        form.is_valid(raise_exception=True)
        query = form.validated_data
        engines, records = ec_list(
            owners=query.get("creators") or [],
            engine_types=query.get("engineTypes") or [],
            statuses=query.get("statuss") or [],
            instances=query.get("ecInstances") or [],
            queue_name=(query.get("queueName") or "").strip() or None,
            cross_cluster=query.get("crossCluster"),
        )
        return linkis_response(
            request, {"ecList": [ec_item(engine, records.get(str(engine.ticket_id))) for engine in engines]}
        )
