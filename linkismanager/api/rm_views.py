"""The resource monitor (Linkis' RMMonitorRest) under /api/rest_j/v1/linkisManager/rm/.

Every figure is derived from live engines and quota rows (see ``linkismanager.usage``). The YARN
endpoints answer that no YARN cluster is configured: engines here are processes on ECM hosts.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from linkismanager.api.rm_serializers import (
    AllUserResourceQuery,
    ApplicationListRequest,
    BatchQueueResourcesRequest,
    QueueResourcesRequest,
    ResetResourceQuery,
    UserResourceQuery,
    application_list,
    engine_record,
    user_resource_tree,
    user_resource_vo,
)
from linkismanager.linkis.envelope import linkis_response
from linkismanager.linkis.exceptions import LinkisAPIError
from linkismanager.linkis.fields import body_object
from linkismanager.linkis.permissions import request_is_admin
from linkismanager.linkis.schema import linkis_schema
from linkismanager.linkis.views import LinkisAPIView
from linkismanager.usage import (
    all_user_resources,
    live_engines_of,
    reset_user_resources,
    user_resources,
    user_resources_for,
)

__all__ = [
    "AllUserResourceView",
    "ApplicationListView",
    "BatchQueueResourcesView",
    "EngineTypeView",
    "EnginesView",
    "GetUserResourceView",
    "QueueResourcesView",
    "QueuesView",
    "ResetResourceView",
    "UserResourcesView",
    "require_admin",
]

TAGS = ["resources"]
PERMISSION_CODE = 210003
ONLY_ADMIN_READ_CODE = 120010
ONLY_ADMIN_READ = "Only admin can read all user's resource.(只有管理员可以读取所有用户的资源.)"
ONLY_ADMIN_RESET_CODE = 120011
ONLY_ADMIN_RESET = "Only admin can reset user's resource.(只有管理员可以重置用户的资源.)"
NO_YARN = (
    "No YARN cluster is configured for this manager: engines run as processes on ECM hosts, so there "
    "are no queue resources to show."
)

_list_of_maps = serializers.ListField(child=serializers.DictField())


def require_admin(request: Request, message: str, *, code: int | None = None) -> None:
    """Refuse a caller without admin rights (an admin user, or an admin token)."""
    if not request_is_admin(request):
        raise LinkisAPIError(message, code=code)


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    form = serializer_class(data=request.query_params)
    form.is_valid(raise_exception=True)
    return form.validated_data


def _body(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    form = serializer_class(data=body_object(request.data))
    form.is_valid(raise_exception=True)
    return form.validated_data


def _text_parameter(name: str, description: str, *, required: bool = False) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.QUERY, required=required, description=description)


class UserResourcesView(LinkisAPIView):
    """The caller's share of their limits, per user + creator and engine type (console tree)."""

    @linkis_schema(
        "rmUserResources",
        summary="The caller's resource shares",
        description="Per user + creator with live engines: `percent` is the largest share of a limit held "
        "(used + locked over max, memory, cores or instances), overall and per engine type. The body is ignored.",
        data={"userResources": _list_of_maps},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        resources = user_resources([request.user.get_username()], engaged_only=True)
        return linkis_response(request, {"userResources": user_resource_tree(list(resources.values()))})


class EnginesView(LinkisAPIView):
    """The caller's live engines with what each uses (``usedResource``) and locks (``preUsedResource``)."""

    @linkis_schema(
        "rmEngines",
        summary="The caller's engines",
        description="The body is ignored. `engines` is an empty list when the caller has none.",
        data={"engines": _list_of_maps},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        engines = live_engines_of(request.user.get_username())
        return linkis_response(request, {"engines": [engine_record(engine) for engine in engines]})


class ApplicationListView(LinkisAPIView):
    """The caller's engines of one user + creator (maybe one engine type), grouped by creator."""

    @linkis_schema(
        "rmApplicationList",
        summary="The caller's engines of one user + creator",
        description="Only the caller's own engines: a userCreator naming another user lists nothing.",
        request=ApplicationListRequest,
        data={"applications": _list_of_maps},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        form = _body(ApplicationListRequest, request)
        user, creator = form["userCreator"]
        caller = request.user.get_username()
        engines = live_engines_of(caller).filter(owner=user, creator=creator)
        if form.get("engineType") is not None:
            engine_type, version = form["engineType"]
            engines = engines.filter(engine_type=engine_type, engine_version=version)
        engines = list(engines)
        limits = {key: resource.maximum for key, resource in user_resources([caller]).items()}
        return linkis_response(request, {"applications": application_list(engines, limits)})


class EngineTypeView(LinkisAPIView):
    """The engine types this manager can launch (the console's filter list)."""

    @linkis_schema(
        "rmEngineType",
        summary="Engine types",
        data={"engineType": serializers.ListField(child=serializers.CharField())},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return linkis_response(request, {"engineType": sorted(settings.ENGINE_LAUNCH_TEMPLATES)})


class AllUserResourceView(LinkisAPIView):
    """Admin: every user + creator + engine type with a quota row or live engines, paged."""

    @linkis_schema(
        "rmAllUserResource",
        summary="All users' resources (admin)",
        description="A row per user + creator + engine type that has a quota row or live engines, so users on "
        "the default limits are listed too. Filters are substrings, any case. `id` is the quota row (null "
        "on the defaults).",
        parameters=[
            _text_parameter("username", "Part of the user name."),
            _text_parameter("creator", "Part of the creator."),
            _text_parameter("engineType", "Part of the engine type with version."),
            OpenApiParameter("page", int, OpenApiParameter.QUERY, description="Page number, from 1 (default 1)."),
            OpenApiParameter("size", int, OpenApiParameter.QUERY, description="Rows per page, 1–1000 (default 20)."),
        ],
        data={"resources": _list_of_maps, "total": serializers.IntegerField()},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        require_admin(request, ONLY_ADMIN_READ, code=ONLY_ADMIN_READ_CODE)
        form = _query(AllUserResourceQuery, request)
        rows, total = all_user_resources(
            username=form.get("username") or None,
            creator=form.get("creator") or None,
            engine_type=form.get("engineType") or None,
            page=form["page"],
            size=form["size"],
        )
        return linkis_response(request, {"resources": [user_resource_vo(row) for row in rows], "total": total})


class GetUserResourceView(LinkisAPIView):
    """One user + creator + engine type: the user themself or an admin."""

    @linkis_schema(
        "rmGetUserResource",
        summary="One user's resources",
        parameters=[
            _text_parameter("username", "The user (yourself unless you are an admin).", required=True),
            _text_parameter("creator", "The creator, e.g. IDE.", required=True),
            _text_parameter("engineType", "python-python3 for one version, python for every version.", required=True),
        ],
        data={"resources": _list_of_maps},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        form = _query(UserResourceQuery, request)
        caller = request.user.get_username()
        if form["username"] != caller and not request_is_admin(request):
            raise LinkisAPIError(
                f"User {caller} may not read the resources of {form['username']}; only admins may"
                "(只有管理员可以查看他人的资源).",
                code=PERMISSION_CODE,
            )
        rows = user_resources_for(form["username"], form["creator"], form["engineType"])
        return linkis_response(request, {"resources": [user_resource_vo(row) for row in rows]})


class ResetResourceView(LinkisAPIView):
    """Admin: tidy quota rows. Figures are derived, so nothing is rewritten; lock-only rows of
    user + creator + engine types without live engines are removed, admins' limits never."""

    @linkis_schema(
        "rmResetResource",
        summary="Reset user resources (admin)",
        description="Without `resourceId` (or with 0 or less) every quota row is considered. A row holding a "
        "limit an admin set is always kept; a row admission made only for locking is removed when its user "
        "has no live engine of that creator and engine type. `data.removed` names the rows removed.",
        parameters=[
            OpenApiParameter(
                "resourceId", int, OpenApiParameter.QUERY, description="The quota row's id (allUserResource `id`)."
            )
        ],
        data={"removed": serializers.ListField(child=serializers.CharField()), "kept": serializers.IntegerField()},
        tags=TAGS,
    )
    def delete(self, request: Request) -> Response:
        require_admin(request, ONLY_ADMIN_RESET, code=ONLY_ADMIN_RESET_CODE)
        resource_id = _query(ResetResourceQuery, request)["resourceId"]
        if resource_id is not None and resource_id <= 0:
            resource_id = None
        result = reset_user_resources(resource_id=resource_id, actor=request.user.get_username())
        return linkis_response(request, {"removed": result.removed, "kept": result.kept}, message="success")


class QueuesView(LinkisAPIView):
    """YARN queues the caller may use: none, as no YARN cluster is configured."""

    @linkis_schema(
        "rmQueues",
        summary="YARN queues (none configured)",
        description="Always an empty list: this manager has no YARN cluster. The body is ignored.",
        data={"queues": _list_of_maps},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        return linkis_response(request, {"queues": []})


class QueueResourcesView(LinkisAPIView):
    """A YARN queue's resources: refused, as no YARN cluster is configured."""

    @linkis_schema(
        "rmQueueResources",
        summary="A YARN queue's resources (none configured)",
        description="The body is checked, then refused with status 1: this manager has no YARN cluster.",
        request=QueueResourcesRequest,
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        _body(QueueResourcesRequest, request)
        raise LinkisAPIError(NO_YARN)


class BatchQueueResourcesView(LinkisAPIView):
    """Several YARN queues' resources: refused, as no YARN cluster is configured."""

    @linkis_schema(
        "rmBatchQueueResources",
        summary="Several YARN queues' resources (none configured)",
        description="The body is checked, then refused with status 1: this manager has no YARN cluster.",
        request=BatchQueueResourcesRequest,
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        _body(BatchQueueResourcesRequest, request)
        raise LinkisAPIError(NO_YARN)
