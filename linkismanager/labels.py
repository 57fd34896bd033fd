"""Linkis labels without the database: key names, features, value formats, checks and the edit rule.

A label is a key and a ``stringValue``. Nodes (ECMs and engines) carry labels, requests carry
labels, and placement compares the two. Everything here works on plain ``{key: stringValue}``
dicts so that services, views and the admin share one set of rules and tests need no database.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from linkismanager.exceptions import ManagerError

__all__ = [
    "CODE_TYPE",
    "COMBINED_USER_CREATOR_ENGINE_TYPE",
    "CONCURRENT_ENGINE_CONN",
    "DUPLICATE_LABEL_CODE",
    "DUPLICATE_LABEL_MESSAGE",
    "ECM_APPLICATION_NAME",
    "EM_INSTANCE",
    "ENGINE_APPLICATION_NAME",
    "ENGINE_CONN_MODE",
    "ENGINE_CONN_RUNTIME_MODE",
    "ENGINE_INSTANCE",
    "ENGINE_TYPE",
    "EXECUTE_ONCE",
    "FIXED_ENGINE_CONN",
    "KNOWN_LABEL_KEYS",
    "LABEL_FEATURES",
    "LABEL_VALUE_ERROR_CODE",
    "MAX_KEY_LENGTH",
    "MAX_VALUE_LENGTH",
    "MODIFIABLE_LABEL_KEYS",
    "ONE_VALUE_MESSAGE",
    "REUSE_EXCLUSION",
    "ROUTE",
    "SERVER_ALIAS",
    "TASK_ID",
    "TENANT",
    "USER_CREATOR",
    "YARN_CLUSTER",
    "YARN_CLUSTER_ERROR_CODE",
    "Label",
    "LabelError",
    "LabelFeature",
    "combined_label_for",
    "core_labels",
    "core_match",
    "format_combined_label",
    "format_em_instance",
    "format_engine_instance",
    "format_engine_type",
    "format_tenant",
    "format_user_creator",
    "format_yarn_cluster",
    "is_modifiable",
    "label_feature",
    "label_json",
    "parse_combined_label",
    "parse_em_instance",
    "parse_engine_instance",
    "parse_engine_type",
    "parse_label_list",
    "parse_tenant",
    "parse_user_creator",
    "parse_yarn_cluster",
    "replace_modifiable",
    "validate_label",
    "validate_label_key",
]

# --- Keys ----------------------------------------------------------------------------------------

USER_CREATOR = "userCreator"
ENGINE_TYPE = "engineType"
SERVER_ALIAS = "serverAlias"
TENANT = "tenant"
EM_INSTANCE = "emInstance"
ENGINE_INSTANCE = "engineInstance"
YARN_CLUSTER = "yarnCluster"
EXECUTE_ONCE = "executeOnce"
ENGINE_CONN_MODE = "engineConnMode"
REUSE_EXCLUSION = "reuseExclusion"
FIXED_ENGINE_CONN = "fixedEngineConn"
# Misspelt in Linkis; clients send this spelling, so it is the key.
ENGINE_CONN_RUNTIME_MODE = "engingeConnRuntimeMode"
ROUTE = "route"
CODE_TYPE = "codeType"
TASK_ID = "taskId"
CONCURRENT_ENGINE_CONN = "concurrentEngineConn"
COMBINED_USER_CREATOR_ENGINE_TYPE = "combined_userCreator_engineType"

# The Linkis application names that prefix the emInstance and engineInstance values.
ECM_APPLICATION_NAME = "linkis-cg-engineconnmanager"
ENGINE_APPLICATION_NAME = "linkis-cg-engineconn"

# Linkis stores label_key in varchar(32) and label_value in varchar(255).
MAX_KEY_LENGTH = 32
MAX_VALUE_LENGTH = 255

_SEPARATOR = "-"
_COMBINED_SEPARATOR = ","
_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LabelFeature(StrEnum):
    """How much a label weighs in placement. Only CORE labels take part in matching."""

    CORE = "CORE"
    SUITABLE = "SUITABLE"
    PRIORITIZED = "PRIORITIZED"
    OPTIONAL = "OPTIONAL"
    UNKNOWN = "UNKNOWN"


# The features Linkis' label classes declare. The CORE keys beyond the four of the placement rule
# (yarnCluster, executeOnce, engineConnMode, fixedEngineConn, engingeConnRuntimeMode) keep, for
# example, a run-once engine or a session's fixed engine from being reused by ordinary requests:
# a node matches only requests with the same set of CORE keys.
LABEL_FEATURES: Mapping[str, LabelFeature] = {
    USER_CREATOR: LabelFeature.CORE,
    ENGINE_TYPE: LabelFeature.CORE,
    SERVER_ALIAS: LabelFeature.CORE,
    TENANT: LabelFeature.CORE,
    YARN_CLUSTER: LabelFeature.CORE,
    EXECUTE_ONCE: LabelFeature.CORE,
    ENGINE_CONN_MODE: LabelFeature.CORE,
    FIXED_ENGINE_CONN: LabelFeature.CORE,
    ENGINE_CONN_RUNTIME_MODE: LabelFeature.CORE,
    EM_INSTANCE: LabelFeature.OPTIONAL,
    ENGINE_INSTANCE: LabelFeature.OPTIONAL,
    REUSE_EXCLUSION: LabelFeature.OPTIONAL,
    ROUTE: LabelFeature.OPTIONAL,
    CODE_TYPE: LabelFeature.OPTIONAL,
    TASK_ID: LabelFeature.OPTIONAL,
    CONCURRENT_ENGINE_CONN: LabelFeature.OPTIONAL,
    COMBINED_USER_CREATOR_ENGINE_TYPE: LabelFeature.OPTIONAL,
}

KNOWN_LABEL_KEYS: frozenset[str] = frozenset(LABEL_FEATURES)

# The only keys the edit endpoints (modifyEngineInfo, modifyEMInfo) change.
MODIFIABLE_LABEL_KEYS: frozenset[str] = frozenset(
    {USER_CREATOR, TENANT, YARN_CLUSTER, ENGINE_CONN_RUNTIME_MODE, FIXED_ENGINE_CONN, ROUTE}
)

# Modifiable keys whose value is a single part: no separator allowed.
_ONE_PART_KEYS = frozenset({TENANT, FIXED_ENGINE_CONN, ENGINE_CONN_RUNTIME_MODE, ROUTE})

# --- Errors --------------------------------------------------------------------------------------

LABEL_VALUE_ERROR_CODE = 25002
YARN_CLUSTER_ERROR_CODE = 25009
DUPLICATE_LABEL_CODE = 210003

ONE_VALUE_MESSAGE = (
    "The value of the label is set incorrectly, only one value can be set, and the separator symbol '-' "
    "cannot be used(标签的值设置错误，只能设置一个值，不能使用分隔符符号'-')"
)
DUPLICATE_LABEL_MESSAGE = "Failed to update label, include repeat label(更新label失败，包含重复label)"


class LabelError(ManagerError):
    """A label key or value the manager refuses; the message names the key (and the value).

    Value problems carry Linkis' label codes (25002; 25009 for yarnCluster), duplicate keys 210003;
    a malformed key or a malformed list carries no code.
    """

    def __init__(self, message: str, *, code: int | None = None, key: str | None = None, value: Any = None) -> None:
        super().__init__(message, code=code)
        self.key = key
        self.value = value


def _shown(value: object, limit: int = 80) -> str:
    """A value short enough to quote in a message: a huge value must not flood the answer or the log."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value_error(key: str, value: object, problem: str, *, code: int = LABEL_VALUE_ERROR_CODE) -> LabelError:
    return LabelError(f"The value of the label {key} {problem}: {_shown(value)!r}", code=code, key=key, value=value)


# --- Features ------------------------------------------------------------------------------------


def label_feature(key: str) -> LabelFeature:
    """The feature of ``key``. Keys Linkis gives no feature are OPTIONAL, as Linkis defaults them,
    so an unknown key never changes which nodes a request matches."""
    return LABEL_FEATURES.get(key, LabelFeature.OPTIONAL)


def is_modifiable(key: str) -> bool:
    """Whether the edit endpoints may change labels of this key."""
    return key in MODIFIABLE_LABEL_KEYS


# --- Value formats -------------------------------------------------------------------------------


def _text(key: str, value: object, what: str, *, code: int = LABEL_VALUE_ERROR_CODE) -> str:
    if not isinstance(value, str) or not value:
        raise _value_error(key, value, f"needs a non-empty {what}", code=code)
    return value


def _two_parts(key: str, value: object, form: str, code: int) -> tuple[str, str]:
    parts = _text(key, value, "value", code=code).split(_SEPARATOR)
    if len(parts) != 2 or not all(parts):
        raise _value_error(key, value, f"must be {form}, two non-empty parts joined by one '-'", code=code)
    return parts[0], parts[1]


def _one_part(key: str, value: object) -> str:
    text = _text(key, value, "value")
    if _SEPARATOR in text:
        raise LabelError(
            f"{ONE_VALUE_MESSAGE}: {key}={_shown(text)!r}", code=LABEL_VALUE_ERROR_CODE, key=key, value=text
        )
    return text


def parse_user_creator(value: str) -> tuple[str, str]:
    """``"hadoop-IDE"`` → ``("hadoop", "IDE")``: exactly two non-empty parts.

    Stricter than Linkis (whose Java split drops a trailing empty part), so that every accepted
    value names a real user and creator.
    """
    return _two_parts(USER_CREATOR, value, "<user>-<creator>", LABEL_VALUE_ERROR_CODE)


def format_user_creator(user: str, creator: str) -> str:
    """The userCreator value; neither part may contain '-', or it would not parse back."""
    value = f"{_text(USER_CREATOR, user, 'user')}{_SEPARATOR}{_text(USER_CREATOR, creator, 'creator')}"
    parse_user_creator(value)
    return value


def _engine_type_parts(shown: object, engine_type: object, version: object) -> tuple[str, str]:
    if not isinstance(engine_type, str) or not isinstance(version, str) or not engine_type or not version:
        raise _value_error(ENGINE_TYPE, shown, "must name a non-empty engineType and version")
    if _SEPARATOR in engine_type:
        # The dash form splits at the first '-': such a type would not survive a round trip.
        raise _value_error(ENGINE_TYPE, shown, "must have an engine type without '-'")
    return engine_type, version


def parse_engine_type(value: str | Mapping[str, Any]) -> tuple[str, str]:
    """``"spark-2.4.3"`` → ``("spark", "2.4.3")``, split at the first '-' (versions may hold dashes).

    Also accepts Linkis' JSON form ``{"engineType": "spark", "version": "2.4.3"}``, as a mapping or
    as a JSON string, because Linkis stores runtime-created labels that way and clients copy them.
    """
    if isinstance(value, Mapping):
        return _engine_type_parts(value, value.get("engineType"), value.get("version"))
    text = _text(ENGINE_TYPE, value, "value")
    if text.lstrip().startswith("{"):
        try:
            decoded = json.loads(text)
        except ValueError:
            raise _value_error(ENGINE_TYPE, text, "is not valid JSON") from None
        if not isinstance(decoded, dict):
            raise _value_error(ENGINE_TYPE, text, "must be a JSON object")
        return _engine_type_parts(text, decoded.get("engineType"), decoded.get("version"))
    engine_type, separator, version = text.partition(_SEPARATOR)
    if not separator or not engine_type or not version:
        raise _value_error(ENGINE_TYPE, text, "must be <engineType>-<version>, both parts non-empty")
    return engine_type, version


def format_engine_type(engine_type: str, version: str) -> str:
    """The engineType value ``<type>-<version>``; the type may not contain '-'."""
    engine_type, version = _engine_type_parts(f"{engine_type}{_SEPARATOR}{version}", engine_type, version)
    return f"{engine_type}{_SEPARATOR}{version}"


def _format_instance(key: str, application: str, instance: str) -> str:
    text = _text(key, instance, "instance")
    if text != text.strip():
        raise _value_error(key, text, "must not have an instance with surrounding spaces")
    return f"{application}{_SEPARATOR}{text}"


def _parse_instance(key: str, application: str, value: str) -> str:
    text = _text(key, value, "value")
    prefix = f"{application}{_SEPARATOR}"
    # Instances may hold dashes (host names do), so strip the known prefix rather than split.
    if not text.startswith(prefix) or len(text) == len(prefix):
        raise _value_error(key, text, f"must be {prefix}<instance>")
    return text[len(prefix) :]


def format_em_instance(instance: str) -> str:
    """The emInstance value of an ECM instance (``host:port``): ``linkis-cg-engineconnmanager-<instance>``."""
    return _format_instance(EM_INSTANCE, ECM_APPLICATION_NAME, instance)


def parse_em_instance(value: str) -> str:
    """The ECM instance named by an emInstance value."""
    return _parse_instance(EM_INSTANCE, ECM_APPLICATION_NAME, value)


def format_engine_instance(instance: str) -> str:
    """The engineInstance value of an engine instance: ``linkis-cg-engineconn-<instance>``.

    The instance need not be ``host:port``: before its port is known an engine is known by its
    ticket id.
    """
    return _format_instance(ENGINE_INSTANCE, ENGINE_APPLICATION_NAME, instance)


def parse_engine_instance(value: str) -> str:
    """The engine instance named by an engineInstance value."""
    return _parse_instance(ENGINE_INSTANCE, ENGINE_APPLICATION_NAME, value)


def parse_tenant(value: str) -> str:
    """The tenant of a tenant value: one part, no '-' (code 25002 otherwise)."""
    return _one_part(TENANT, value)


def format_tenant(tenant: str) -> str:
    """The tenant value of a tenant name, checked as :func:`parse_tenant` would."""
    return _one_part(TENANT, tenant)


def parse_yarn_cluster(value: str) -> tuple[str, str]:
    """``"yarn-bdp"`` → ``("yarn", "bdp")``: cluster type and name, exactly two parts (code 25009)."""
    return _two_parts(YARN_CLUSTER, value, "<clusterType>-<clusterName>", YARN_CLUSTER_ERROR_CODE)


def format_yarn_cluster(cluster_type: str, cluster_name: str) -> str:
    """The yarnCluster value ``<clusterType>-<clusterName>``."""
    value = (
        f"{_text(YARN_CLUSTER, cluster_type, 'cluster type', code=YARN_CLUSTER_ERROR_CODE)}{_SEPARATOR}"
        f"{_text(YARN_CLUSTER, cluster_name, 'cluster name', code=YARN_CLUSTER_ERROR_CODE)}"
    )
    parse_yarn_cluster(value)
    return value


def format_combined_label(user: str, creator: str, engine_type: str, version: str) -> str:
    """The combined userCreator + engineType value, ``<user>-<creator>,<type>-<version>``.

    It is the key of a user's quota and of the engine history rows (``alice-IDE,python-python3``).
    """
    return f"{format_user_creator(user, creator)}{_COMBINED_SEPARATOR}{format_engine_type(engine_type, version)}"


def parse_combined_label(value: str) -> tuple[str, str, str, str]:
    """``"hadoop-IDE,spark-2.4.3"`` → ``("hadoop", "IDE", "spark", "2.4.3")``."""
    text = _text(COMBINED_USER_CREATOR_ENGINE_TYPE, value, "value")
    user_creator, separator, engine_type = text.partition(_COMBINED_SEPARATOR)
    if not separator or _COMBINED_SEPARATOR in engine_type:
        raise _value_error(COMBINED_USER_CREATOR_ENGINE_TYPE, text, "must be <user>-<creator>,<engineType>-<version>")
    try:
        user, creator = parse_user_creator(user_creator)
        kind, version = parse_engine_type(engine_type)
    except LabelError as error:
        raise _value_error(
            COMBINED_USER_CREATOR_ENGINE_TYPE,
            text,
            f"must be <user>-<creator>,<engineType>-<version> ({error.message})",
        ) from None
    return user, creator, kind, version


def combined_label_for(labels: Mapping[str, str]) -> str:
    """The combined value of a label set that has a userCreator and an engineType label."""
    for key in (USER_CREATOR, ENGINE_TYPE):
        if key not in labels:
            raise LabelError(f"The label {key} is required to build {COMBINED_USER_CREATOR_ENGINE_TYPE}", key=key)
    return format_combined_label(*parse_user_creator(labels[USER_CREATOR]), *parse_engine_type(labels[ENGINE_TYPE]))


# --- Checks --------------------------------------------------------------------------------------


def validate_label_key(key: object) -> str:
    """``key`` if it is a plausible label key: at most 32 characters of letters, digits and '_'.

    Unknown but well-formed keys pass, as Linkis lets clients send labels it has no class for.
    """
    if not isinstance(key, str):
        raise LabelError(f"Label key {_shown(key)!r} must be a string", key=None, value=key)
    if len(key) > MAX_KEY_LENGTH:
        raise LabelError(f"Label key {_shown(key)!r} is longer than {MAX_KEY_LENGTH} characters", key=key)
    if not _KEY_PATTERN.fullmatch(key):
        raise LabelError(
            f"Label key {_shown(key)!r} is invalid: it must start with a letter or '_' and hold only "
            "letters, digits and '_'",
            key=key,
        )
    return key


def _normalised_engine_type(value: str) -> str:
    """The dash form of a JSON engineType value, so that matching compares like with like.

    Anything else is returned unchanged: a dash value is checked where its parts are needed, and an
    edit request may carry engineType only to have it ignored.
    """
    if not value.lstrip().startswith("{"):
        return value
    try:
        return format_engine_type(*parse_engine_type(value))
    except LabelError:
        return value


def validate_label(key: object, value: object) -> str:
    """The value to store for ``key``, or a :class:`LabelError` naming the key and the value.

    Every label needs a well-formed key and a non-empty value of at most 255 characters without
    control characters or surrounding spaces (a stray space would make a tenant no request ever
    matches). User-modifiable keys also get Linkis' format checks. Other keys are not
    format-checked here, because the edit endpoints must ignore them silently; their parse helpers
    check them where their parts are used. A JSON engineType is returned in its dash form.
    """
    key = validate_label_key(key)
    if not isinstance(value, str):
        raise _value_error(key, value, "must be a string")
    if not value.strip():
        raise _value_error(key, value, "is empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise _value_error(key, value, f"is longer than {MAX_VALUE_LENGTH} characters")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise _value_error(key, value, "contains control characters")
    if value != value.strip():
        raise _value_error(key, value, "starts or ends with spaces")
    if key == USER_CREATOR:
        parse_user_creator(value)
    elif key == YARN_CLUSTER:
        parse_yarn_cluster(value)
    elif key in _ONE_PART_KEYS:
        _one_part(key, value)
    elif key == ENGINE_TYPE:
        normalised = _normalised_engine_type(value)
        if len(normalised) > MAX_VALUE_LENGTH:
            raise _value_error(key, normalised, f"is longer than {MAX_VALUE_LENGTH} characters")
        return normalised
    return value


def parse_label_list(items: object, *, field: str = "labels") -> dict[str, str]:
    """The labels a client sent, checked, as an ordered ``{key: stringValue}`` dict.

    Accepts the list form of the edit endpoints, ``[{"labelKey": ..., "stringValue": ...}]`` (other
    keys of an element, such as the ``feature`` the console echoes back, are ignored), and the map
    form of askEngineConn, ``{"engineType": "python-python3", "userCreator": "alice-IDE"}``. A key
    given twice is refused (210003) rather than letting the last one win silently. Nothing is
    written: callers apply the result only when it is returned.
    """
    result: dict[str, str] = {}
    if isinstance(items, Mapping):
        for key, value in items.items():
            if not isinstance(key, str):
                raise LabelError(f"{field} must map label keys (strings) to values", value=key)
            if not isinstance(value, str):
                raise LabelError(f"{field}.{_shown(key)} must be a string value", key=key, value=value)
            result[key] = validate_label(key, value)
        return result
    if not isinstance(items, list):
        raise LabelError(
            f"{field} must be a list of {{labelKey, stringValue}} objects or a map of label keys to values"
        )
    for index, item in enumerate(items):
        element = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise LabelError(f"{element} must be an object with labelKey and stringValue")
        for name in ("labelKey", "stringValue"):
            if name not in item or item[name] is None:
                raise LabelError(f"{element}.{name} is required")
            if not isinstance(item[name], str):
                raise LabelError(f"{element}.{name} must be a string", value=item[name])
        key = validate_label_key(item["labelKey"])
        if key in result:
            raise LabelError(f"{DUPLICATE_LABEL_MESSAGE}: {key}", code=DUPLICATE_LABEL_CODE, key=key)
        result[key] = validate_label(key, item["stringValue"])
    return result


# --- Edit and match ------------------------------------------------------------------------------


def replace_modifiable(current: Mapping[str, str], requested: Mapping[str, str]) -> dict[str, str]:
    """A node's labels after an edit request, following Linkis' rule.

    The user-modifiable labels are replaced as a set: a modifiable key missing from the request is
    removed (so ``{}`` strips them all), one present takes the requested value. Non-modifiable keys
    of the request are ignored without a word, since the console sends every label back, and the
    node's own non-modifiable labels are kept. The requested values are checked before anything is
    returned, so an invalid request changes nothing.
    """
    wanted = {key: validate_label(key, value) for key, value in requested.items() if key in MODIFIABLE_LABEL_KEYS}
    result: dict[str, str] = {}
    for key, value in current.items():
        if key not in MODIFIABLE_LABEL_KEYS:
            result[key] = value
        elif key in wanted:
            result[key] = wanted.pop(key)
    result.update(wanted)
    return result


def core_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Only the CORE labels, in their order: the ones placement compares."""
    return {key: value for key, value in labels.items() if label_feature(key) is LabelFeature.CORE}


def core_match(request_labels: Mapping[str, str], node_labels: Mapping[str, str]) -> bool:
    """Whether a node may serve a request, by Linkis' CORE rule.

    The node must carry every CORE label of the request with the same value, and no CORE key the
    request lacks. So an ECM with a tenant takes only that tenant's requests, tenant-less requests
    never land on it, and an engine is reused only by requests with the very same CORE set. The
    caller picks the request labels for the kind of node: for an ECM, the ECM alias
    (``serverAlias``) and the request's tenant, not its userCreator or engineType.
    """
    return core_labels(request_labels) == core_labels(node_labels)


# --- API form ------------------------------------------------------------------------------------


def _service_instance(application: str, instance: str) -> dict[str, Any]:
    return {
        "applicationName": application,
        "instance": instance,
        "registryTimestamp": 0,
        "mappingPorts": None,
        "mappingHost": None,
    }


def _extras(key: str, value: str) -> dict[str, Any]:
    if key == USER_CREATOR:
        user, creator = parse_user_creator(value)
        return {"user": user, "creator": creator}
    if key == ENGINE_TYPE:
        engine_type, version = parse_engine_type(value)
        return {"engineType": engine_type, "version": version}
    if key == EM_INSTANCE:
        instance = parse_em_instance(value)
        return {
            "instance": instance,
            "serviceName": ECM_APPLICATION_NAME,
            "serviceInstance": _service_instance(ECM_APPLICATION_NAME, instance),
        }
    if key == ENGINE_INSTANCE:
        instance = parse_engine_instance(value)
        return {
            "instance": instance,
            "serviceName": ENGINE_APPLICATION_NAME,
            "serviceInstance": _service_instance(ENGINE_APPLICATION_NAME, instance),
        }
    if key == TENANT:
        return {"tenant": value}
    if key == YARN_CLUSTER:
        cluster_type, cluster_name = parse_yarn_cluster(value)
        return {"clusterType": cluster_type, "clusterName": cluster_name}
    if key == SERVER_ALIAS:
        return {"alias": value}
    if key == CODE_TYPE:
        return {"codeType": value}
    return {}


def label_json(key: str, value: str) -> dict[str, Any]:
    """A label as the API shows it: ``labelKey``, ``stringValue``, ``feature``, ``modifiable`` and the
    getter-style extras Linkis' JSON has for the key (``user``/``creator``, ``engineType``/``version``,
    ``instance``/``serviceName``/``serviceInstance``, ``tenant`` …).

    A stored value that does not parse just gets no extras: one odd label must not break a listing.
    """
    data: dict[str, Any] = {
        "labelKey": key,
        "stringValue": value,
        "feature": label_feature(key).value,
        "modifiable": is_modifiable(key),
    }
    try:
        data.update(_extras(key, value))
    except LabelError:
        pass
    return data


@dataclass(frozen=True)
class Label:
    """One label, for code that passes labels one at a time rather than as a dict."""

    key: str
    string_value: str

    @classmethod
    def parse(cls, key: object, value: object) -> Label:
        """A checked label (see :func:`validate_label`)."""
        checked = validate_label(key, value)
        return cls(str(key), checked)

    @property
    def feature(self) -> LabelFeature:
        return label_feature(self.key)

    @property
    def modifiable(self) -> bool:
        return is_modifiable(self.key)

    def to_json(self) -> dict[str, Any]:
        """The API form, as :func:`label_json`."""
        return label_json(self.key, self.string_value)
