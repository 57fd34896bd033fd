"""Label keys, features, value formats, checks, the edit rule and CORE matching (no database)."""

from __future__ import annotations

import json

import pytest

from linkismanager.exceptions import ManagerError
from linkismanager.labels import (
    CODE_TYPE,
    COMBINED_USER_CREATOR_ENGINE_TYPE,
    CONCURRENT_ENGINE_CONN,
    DUPLICATE_LABEL_CODE,
    ECM_APPLICATION_NAME,
    EM_INSTANCE,
    ENGINE_APPLICATION_NAME,
    ENGINE_CONN_MODE,
    ENGINE_CONN_RUNTIME_MODE,
    ENGINE_INSTANCE,
    ENGINE_TYPE,
    EXECUTE_ONCE,
    FIXED_ENGINE_CONN,
    KNOWN_LABEL_KEYS,
    LABEL_VALUE_ERROR_CODE,
    MODIFIABLE_LABEL_KEYS,
    ONE_VALUE_MESSAGE,
    REUSE_EXCLUSION,
    ROUTE,
    SERVER_ALIAS,
    TASK_ID,
    TENANT,
    USER_CREATOR,
    YARN_CLUSTER,
    YARN_CLUSTER_ERROR_CODE,
    Label,
    LabelError,
    LabelFeature,
    combined_label_for,
    core_labels,
    core_match,
    format_combined_label,
    format_em_instance,
    format_engine_instance,
    format_engine_type,
    format_tenant,
    format_user_creator,
    format_yarn_cluster,
    is_modifiable,
    label_feature,
    label_json,
    parse_combined_label,
    parse_em_instance,
    parse_engine_instance,
    parse_engine_type,
    parse_label_list,
    parse_tenant,
    parse_user_creator,
    parse_yarn_cluster,
    replace_modifiable,
    validate_label,
    validate_label_key,
)

LINKIS_ONE_VALUE_TEXT = (
    "The value of the label is set incorrectly, only one value can be set, and the separator symbol '-' cannot be used"
)


# --- Keys and features ---------------------------------------------------------------------------


def test_the_key_constants_have_the_linkis_spellings():
    assert [
        USER_CREATOR,
        ENGINE_TYPE,
        SERVER_ALIAS,
        TENANT,
        EM_INSTANCE,
        ENGINE_INSTANCE,
        YARN_CLUSTER,
        EXECUTE_ONCE,
        ENGINE_CONN_MODE,
        REUSE_EXCLUSION,
        FIXED_ENGINE_CONN,
        ENGINE_CONN_RUNTIME_MODE,
        ROUTE,
        CODE_TYPE,
        TASK_ID,
        CONCURRENT_ENGINE_CONN,
        COMBINED_USER_CREATOR_ENGINE_TYPE,
    ] == [
        "userCreator",
        "engineType",
        "serverAlias",
        "tenant",
        "emInstance",
        "engineInstance",
        "yarnCluster",
        "executeOnce",
        "engineConnMode",
        "reuseExclusion",
        "fixedEngineConn",
        "engingeConnRuntimeMode",
        "route",
        "codeType",
        "taskId",
        "concurrentEngineConn",
        "combined_userCreator_engineType",
    ]


@pytest.mark.parametrize("key", ["userCreator", "engineType", "serverAlias", "tenant"])
def test_the_four_placement_keys_are_core(key):
    assert label_feature(key) is LabelFeature.CORE


@pytest.mark.parametrize(
    "key", ["yarnCluster", "executeOnce", "engineConnMode", "fixedEngineConn", "engingeConnRuntimeMode"]
)
def test_keys_that_keep_engines_apart_are_core_as_in_linkis(key):
    assert label_feature(key) is LabelFeature.CORE


@pytest.mark.parametrize(
    "key",
    [
        "emInstance",
        "engineInstance",
        "reuseExclusion",
        "route",
        "codeType",
        "taskId",
        "concurrentEngineConn",
        "combined_userCreator_engineType",
    ],
)
def test_other_known_keys_are_optional(key):
    assert label_feature(key) is LabelFeature.OPTIONAL


def test_an_unknown_key_is_optional_so_it_never_changes_matching():
    assert label_feature("myOwnLabel") is LabelFeature.OPTIONAL


def test_every_known_key_has_a_feature():
    assert KNOWN_LABEL_KEYS >= MODIFIABLE_LABEL_KEYS
    assert all(isinstance(label_feature(key), LabelFeature) for key in KNOWN_LABEL_KEYS)


def test_the_user_modifiable_keys_are_linkis_six():
    assert MODIFIABLE_LABEL_KEYS == {
        "userCreator",
        "tenant",
        "yarnCluster",
        "engingeConnRuntimeMode",
        "fixedEngineConn",
        "route",
    }
    assert is_modifiable("tenant")
    assert not is_modifiable("engineType")
    assert not is_modifiable("emInstance")


def test_label_errors_are_manager_errors_with_a_code():
    error = LabelError("bad", code=25002, key="tenant", value="a-b")
    assert isinstance(error, ManagerError)
    assert (error.message, error.code, error.key, error.value) == ("bad", 25002, "tenant", "a-b")


# --- userCreator ---------------------------------------------------------------------------------


def test_it_parses_user_creator():
    assert parse_user_creator("hadoop-IDE") == ("hadoop", "IDE")


def test_it_formats_user_creator_and_parses_it_back():
    value = format_user_creator("alice", "IDE")
    assert value == "alice-IDE"
    assert parse_user_creator(value) == ("alice", "IDE")


@pytest.mark.parametrize("value", ["hadoop", "hadoop-IDE-x", "-IDE", "hadoop-", "-", "", "a--b"])
def test_user_creator_needs_exactly_two_non_empty_parts(value):
    with pytest.raises(LabelError) as caught:
        parse_user_creator(value)
    assert caught.value.code == LABEL_VALUE_ERROR_CODE
    assert "userCreator" in caught.value.message
    assert caught.value.key == "userCreator"


@pytest.mark.parametrize(("user", "creator"), [("al-ice", "IDE"), ("alice", "ID-E"), ("", "IDE"), ("alice", "")])
def test_formatting_user_creator_refuses_parts_that_would_not_parse_back(user, creator):
    with pytest.raises(LabelError) as caught:
        format_user_creator(user, creator)
    assert "userCreator" in caught.value.message


def test_parse_user_creator_refuses_a_non_string():
    with pytest.raises(LabelError) as caught:
        parse_user_creator(None)
    assert "userCreator" in caught.value.message


# --- engineType ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("spark-2.4.3", ("spark", "2.4.3")),
        ("python-python3", ("python", "python3")),
        ("spark-3.2.1-hadoop3", ("spark", "3.2.1-hadoop3")),
        ("*-*", ("*", "*")),
    ],
)
def test_it_splits_engine_type_at_the_first_dash(value, parts):
    assert parse_engine_type(value) == parts


def test_it_accepts_the_json_form_of_engine_type_as_a_dict():
    assert parse_engine_type({"engineType": "spark", "version": "2.4.3"}) == ("spark", "2.4.3")


def test_it_accepts_the_json_form_of_engine_type_as_a_string():
    assert parse_engine_type('{"engineType":"spark","version":"2.4.3"}') == ("spark", "2.4.3")
    assert parse_engine_type(' {"version": "3", "engineType": "python", "feature": "CORE"}') == ("python", "3")


@pytest.mark.parametrize(
    "value",
    [
        "spark",
        "spark-",
        "-2.4.3",
        "",
        "{not json",
        "[1, 2]",
        '{"engineType": "spark"}',
        '{"engineType": "spark", "version": 2}',
        '{"engineType": "sp-ark", "version": "2"}',
        {"engineType": "", "version": "2"},
        {"version": "2"},
        None,
    ],
)
def test_it_refuses_malformed_engine_types_naming_the_label(value):
    with pytest.raises(LabelError) as caught:
        parse_engine_type(value)
    assert caught.value.code == LABEL_VALUE_ERROR_CODE
    assert "engineType" in caught.value.message


def test_it_formats_engine_type_and_parses_it_back():
    assert format_engine_type("spark", "3.2.1-hadoop3") == "spark-3.2.1-hadoop3"
    assert parse_engine_type(format_engine_type("spark", "3.2.1-hadoop3")) == ("spark", "3.2.1-hadoop3")


@pytest.mark.parametrize(("engine_type", "version"), [("sp-ark", "1"), ("", "1"), ("spark", "")])
def test_formatting_engine_type_refuses_bad_parts(engine_type, version):
    with pytest.raises(LabelError) as caught:
        format_engine_type(engine_type, version)
    assert "engineType" in caught.value.message


# --- emInstance and engineInstance ---------------------------------------------------------------


def test_it_formats_and_parses_em_instance():
    value = format_em_instance("bdp110:9102")
    assert value == "linkis-cg-engineconnmanager-bdp110:9102"
    assert parse_em_instance(value) == "bdp110:9102"


def test_it_formats_and_parses_engine_instance():
    value = format_engine_instance("bdp110:12295")
    assert value == "linkis-cg-engineconn-bdp110:12295"
    assert parse_engine_instance(value) == "bdp110:12295"


def test_instances_with_dashes_and_ticket_ids_round_trip():
    ticket = "0f3c9a5e-2b7d-4f7e-9d51-3f1b2a6c8e90"
    assert parse_engine_instance(format_engine_instance(ticket)) == ticket
    assert parse_em_instance(format_em_instance("node-1.example:9102")) == "node-1.example:9102"


def test_the_application_names_are_linkis():
    assert ECM_APPLICATION_NAME == "linkis-cg-engineconnmanager"
    assert ENGINE_APPLICATION_NAME == "linkis-cg-engineconn"


@pytest.mark.parametrize(
    "value", ["linkis-cg-engineconn-bdp110:1", "bdp110:9102", "linkis-cg-engineconnmanager-", "", None]
)
def test_parse_em_instance_refuses_other_values(value):
    with pytest.raises(LabelError) as caught:
        parse_em_instance(value)
    assert caught.value.code == LABEL_VALUE_ERROR_CODE
    assert "emInstance" in caught.value.message


@pytest.mark.parametrize("value", ["linkis-cg-engineconnmanager-bdp110:9102", "bdp110:1", "linkis-cg-engineconn-", ""])
def test_parse_engine_instance_refuses_other_values(value):
    with pytest.raises(LabelError) as caught:
        parse_engine_instance(value)
    assert "engineInstance" in caught.value.message


@pytest.mark.parametrize("instance", ["", " bdp110:1", None])
def test_formatting_an_instance_refuses_empty_or_padded_instances(instance):
    with pytest.raises(LabelError) as caught:
        format_em_instance(instance)
    assert "emInstance" in caught.value.message
    with pytest.raises(LabelError) as caught:
        format_engine_instance(instance)
    assert "engineInstance" in caught.value.message


# --- tenant and yarnCluster ----------------------------------------------------------------------


def test_it_parses_and_formats_a_tenant():
    assert parse_tenant("teamA") == "teamA"
    assert format_tenant("teamA") == "teamA"


@pytest.mark.parametrize("value", ["team-a", "team-", "-team"])
def test_a_tenant_with_a_dash_gets_linkis_one_value_error(value):
    with pytest.raises(LabelError) as caught:
        parse_tenant(value)
    assert caught.value.code == 25002
    assert caught.value.message.startswith(LINKIS_ONE_VALUE_TEXT)
    assert caught.value.message.startswith(ONE_VALUE_MESSAGE)
    assert "tenant" in caught.value.message
    assert value in caught.value.message


def test_an_empty_tenant_is_refused():
    with pytest.raises(LabelError) as caught:
        format_tenant("")
    assert "tenant" in caught.value.message


def test_it_parses_and_formats_a_yarn_cluster():
    assert parse_yarn_cluster("yarn-bdp") == ("yarn", "bdp")
    assert format_yarn_cluster("yarn", "bdp") == "yarn-bdp"


@pytest.mark.parametrize("value", ["yarn", "yarn-bdp-2", "yarn-", "-bdp", ""])
def test_a_yarn_cluster_needs_exactly_two_parts_with_code_25009(value):
    with pytest.raises(LabelError) as caught:
        parse_yarn_cluster(value)
    assert caught.value.code == YARN_CLUSTER_ERROR_CODE == 25009
    assert "yarnCluster" in caught.value.message


@pytest.mark.parametrize(("cluster_type", "name"), [("ya-rn", "bdp"), ("yarn", ""), (None, "bdp")])
def test_formatting_a_yarn_cluster_refuses_bad_parts(cluster_type, name):
    with pytest.raises(LabelError) as caught:
        format_yarn_cluster(cluster_type, name)
    assert "yarnCluster" in caught.value.message


# --- the combined label --------------------------------------------------------------------------


def test_it_formats_the_combined_label():
    assert format_combined_label("hadoop", "IDE", "spark", "2.4.3") == "hadoop-IDE,spark-2.4.3"


def test_it_parses_the_combined_label():
    assert parse_combined_label("alice-IDE,python-python3") == ("alice", "IDE", "python", "python3")
    assert parse_combined_label("alice-IDE,spark-3.2.1-hadoop3") == ("alice", "IDE", "spark", "3.2.1-hadoop3")


def test_it_builds_the_combined_label_from_a_label_set():
    labels = {ENGINE_TYPE: "python-python3", USER_CREATOR: "alice-IDE", CODE_TYPE: "py"}
    assert combined_label_for(labels) == "alice-IDE,python-python3"


def test_it_builds_the_combined_label_from_a_json_engine_type():
    labels = {ENGINE_TYPE: '{"engineType":"spark","version":"2.4.3"}', USER_CREATOR: "hadoop-IDE"}
    assert combined_label_for(labels) == "hadoop-IDE,spark-2.4.3"


@pytest.mark.parametrize("missing", [USER_CREATOR, ENGINE_TYPE])
def test_the_combined_label_needs_both_parts(missing):
    labels = {ENGINE_TYPE: "python-python3", USER_CREATOR: "alice-IDE"}
    del labels[missing]
    with pytest.raises(LabelError) as caught:
        combined_label_for(labels)
    assert missing in caught.value.message


@pytest.mark.parametrize(
    "value", ["alice-IDE", "alice-IDE,", "alice,python-python3", "alice-IDE,python", "a-b,c-d,e-f", ""]
)
def test_it_refuses_malformed_combined_labels(value):
    with pytest.raises(LabelError) as caught:
        parse_combined_label(value)
    assert caught.value.code == LABEL_VALUE_ERROR_CODE
    assert "combined_userCreator_engineType" in caught.value.message


# --- key and value checks ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["tenant", "myLabel", "_private", "a1", "combined_userCreator_engineType", "x" * 32])
def test_well_formed_keys_pass(key):
    assert validate_label_key(key) == key


@pytest.mark.parametrize("key", ["", "1abc", "a b", "a-b", "tenant;drop", "é", "x" * 33, "tenant\n"])
def test_junk_keys_are_refused_naming_the_key(key):
    with pytest.raises(LabelError) as caught:
        validate_label_key(key)
    assert caught.value.code is None
    assert f"Label key {key!r}" in caught.value.message


def test_a_non_string_key_is_refused():
    with pytest.raises(LabelError) as caught:
        validate_label_key(5)
    assert "5" in caught.value.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (USER_CREATOR, "alice-IDE"),
        (TENANT, "teamA"),
        (YARN_CLUSTER, "yarn-bdp"),
        (FIXED_ENGINE_CONN, "session42"),
        (ENGINE_CONN_RUNTIME_MODE, "yarn"),
        (ROUTE, "gateway1"),
        (ENGINE_TYPE, "python-python3"),
        (EM_INSTANCE, "linkis-cg-engineconnmanager-bdp110:9102"),
        (CODE_TYPE, "sql"),
        ("myLabel", "any-thing-goes"),
    ],
)
def test_valid_labels_pass_unchanged(key, value):
    assert validate_label(key, value) == value


@pytest.mark.parametrize("key", [TENANT, FIXED_ENGINE_CONN, ENGINE_CONN_RUNTIME_MODE, ROUTE])
def test_one_part_keys_refuse_a_dash_with_25002_and_linkis_text(key):
    with pytest.raises(LabelError) as caught:
        validate_label(key, "two-parts")
    assert caught.value.code == 25002
    assert caught.value.message.startswith(LINKIS_ONE_VALUE_TEXT + "(")
    assert key in caught.value.message
    assert "two-parts" in caught.value.message


def test_user_creator_is_checked_as_a_modifiable_key():
    with pytest.raises(LabelError) as caught:
        validate_label(USER_CREATOR, "alice")
    assert caught.value.code == 25002
    assert "userCreator" in caught.value.message
    assert "alice" in caught.value.message


def test_yarn_cluster_is_checked_with_code_25009():
    with pytest.raises(LabelError) as caught:
        validate_label(YARN_CLUSTER, "bdp")
    assert caught.value.code == 25009
    assert "yarnCluster" in caught.value.message
    assert "bdp" in caught.value.message


@pytest.mark.parametrize("key", [TENANT, CODE_TYPE, ENGINE_TYPE, "myLabel"])
@pytest.mark.parametrize("value", ["", "   "])
def test_empty_values_are_refused_for_every_key(key, value):
    with pytest.raises(LabelError) as caught:
        validate_label(key, value)
    assert caught.value.code == LABEL_VALUE_ERROR_CODE
    assert key in caught.value.message
    assert "empty" in caught.value.message


def test_a_value_of_255_characters_passes_and_256_is_refused():
    assert validate_label(CODE_TYPE, "x" * 255) == "x" * 255
    with pytest.raises(LabelError) as caught:
        validate_label(CODE_TYPE, "x" * 256)
    assert "codeType" in caught.value.message
    assert "255" in caught.value.message
    # The message quotes a shortened value rather than all of it.
    assert len(caught.value.message) < 200


@pytest.mark.parametrize("value", ["team\nA", "team\x00A", "\tteamA"])
def test_control_characters_are_refused(value):
    with pytest.raises(LabelError) as caught:
        validate_label(TENANT, value)
    assert "tenant" in caught.value.message


@pytest.mark.parametrize("value", [" teamA", "teamA "])
def test_surrounding_spaces_are_refused_so_a_tenant_cannot_silently_mismatch(value):
    with pytest.raises(LabelError) as caught:
        validate_label(TENANT, value)
    assert "tenant" in caught.value.message
    assert "spaces" in caught.value.message


@pytest.mark.parametrize("value", [None, 5, ["a"], {"a": "b"}])
def test_non_string_values_are_refused(value):
    with pytest.raises(LabelError) as caught:
        validate_label(TENANT, value)
    assert "tenant" in caught.value.message


def test_a_json_engine_type_is_stored_in_its_dash_form():
    assert validate_label(ENGINE_TYPE, '{"engineType":"spark","version":"2.4.3"}') == "spark-2.4.3"


def test_non_modifiable_keys_are_not_format_checked_since_edits_ignore_them():
    assert validate_label(ENGINE_TYPE, "spark") == "spark"
    assert validate_label(EM_INSTANCE, "somewhere") == "somewhere"
    assert validate_label(ENGINE_TYPE, "{broken") == "{broken"


# --- parse_label_list ----------------------------------------------------------------------------


def test_it_parses_the_list_form_in_order():
    items = [
        {"labelKey": "userCreator", "stringValue": "alice-IDE"},
        {"labelKey": "engineType", "stringValue": "python-python3"},
        {"labelKey": "tenant", "stringValue": "teamA"},
    ]
    result = parse_label_list(items)
    assert result == {"userCreator": "alice-IDE", "engineType": "python-python3", "tenant": "teamA"}
    assert list(result) == ["userCreator", "engineType", "tenant"]


def test_it_ignores_extra_keys_the_console_echoes_back():
    items = [label_json(TENANT, "teamA")]
    assert parse_label_list(items) == {"tenant": "teamA"}


def test_it_parses_the_map_form_of_ask_engine_conn():
    result = parse_label_list({"engineType": "python-python3", "userCreator": "alice-IDE"})
    assert result == {"engineType": "python-python3", "userCreator": "alice-IDE"}


def test_it_normalises_a_json_engine_type_in_the_map_form():
    result = parse_label_list({"engineType": json.dumps({"engineType": "spark", "version": "2.4.3"})})
    assert result == {"engineType": "spark-2.4.3"}


def test_empty_lists_and_maps_give_no_labels():
    assert parse_label_list([]) == {}
    assert parse_label_list({}) == {}


@pytest.mark.parametrize("items", [None, "tenant=teamA", 5, ("a", "b"), True])
def test_a_labels_field_of_the_wrong_type_is_refused_naming_labels(items):
    with pytest.raises(LabelError) as caught:
        parse_label_list(items)
    assert caught.value.message.startswith("labels ")


def test_the_field_name_can_be_given():
    with pytest.raises(LabelError) as caught:
        parse_label_list(None, field="em.labels")
    assert caught.value.message.startswith("em.labels ")


@pytest.mark.parametrize(
    ("items", "named"),
    [
        (["tenant"], "labels[0]"),
        ([{"labelKey": "tenant", "stringValue": "a"}, 5], "labels[1]"),
        ([{"stringValue": "a"}], "labels[0].labelKey"),
        ([{"labelKey": "tenant"}], "labels[0].stringValue"),
        ([{"labelKey": "tenant", "stringValue": None}], "labels[0].stringValue"),
        ([{"labelKey": 3, "stringValue": "a"}], "labels[0].labelKey"),
        ([{"labelKey": "tenant", "stringValue": 3}], "labels[0].stringValue"),
        ([{"labelKey": "tenant", "stringValue": ["a"]}], "labels[0].stringValue"),
    ],
)
def test_malformed_elements_are_refused_naming_the_element(items, named):
    with pytest.raises(LabelError) as caught:
        parse_label_list(items)
    assert caught.value.message.startswith(named + " ")
    assert caught.value.code is None


@pytest.mark.parametrize("value", [None, 3, True, {"engineType": "spark", "version": "2"}])
def test_non_string_values_in_the_map_form_are_refused_naming_the_key(value):
    with pytest.raises(LabelError) as caught:
        parse_label_list({"engineType": value})
    assert caught.value.message.startswith("labels.engineType ")


def test_duplicate_keys_are_refused_naming_the_key():
    items = [
        {"labelKey": "tenant", "stringValue": "teamA"},
        {"labelKey": "route", "stringValue": "r1"},
        {"labelKey": "tenant", "stringValue": "teamB"},
    ]
    with pytest.raises(LabelError) as caught:
        parse_label_list(items)
    assert caught.value.code == DUPLICATE_LABEL_CODE == 210003
    assert caught.value.key == "tenant"
    assert caught.value.message.startswith("Failed to update label, include repeat label(更新label失败，包含重复label)")
    assert caught.value.message.endswith(": tenant")


def test_a_duplicate_with_the_same_value_is_refused_too():
    items = [{"labelKey": "tenant", "stringValue": "teamA"}, {"labelKey": "tenant", "stringValue": "teamA"}]
    with pytest.raises(LabelError):
        parse_label_list(items)


def test_values_in_the_list_are_checked():
    with pytest.raises(LabelError) as caught:
        parse_label_list([{"labelKey": "tenant", "stringValue": "team-a"}])
    assert caught.value.code == 25002
    assert "tenant" in caught.value.message


def test_junk_keys_in_the_list_are_refused():
    with pytest.raises(LabelError) as caught:
        parse_label_list([{"labelKey": "bad key", "stringValue": "a"}])
    assert "bad key" in caught.value.message


def test_junk_keys_in_the_map_are_refused():
    with pytest.raises(LabelError) as caught:
        parse_label_list({"bad key": "a"})
    assert "bad key" in caught.value.message


def test_a_map_with_non_string_keys_is_refused():
    with pytest.raises(LabelError) as caught:
        parse_label_list({1: "a"})
    assert caught.value.message.startswith("labels ")


# --- replace_modifiable --------------------------------------------------------------------------

ECM_LABELS = {
    SERVER_ALIAS: "linkis-cg-engineconnmanager",
    EM_INSTANCE: "linkis-cg-engineconnmanager-bdp110:9102",
    TENANT: "teamA",
    ROUTE: "r1",
}


def test_a_requested_modifiable_label_replaces_the_current_value():
    result = replace_modifiable(ECM_LABELS, {TENANT: "teamB", ROUTE: "r1"})
    assert result == {**ECM_LABELS, TENANT: "teamB"}


def test_a_modifiable_label_absent_from_the_request_is_removed():
    result = replace_modifiable(ECM_LABELS, {TENANT: "teamA"})
    assert ROUTE not in result
    assert result == {SERVER_ALIAS: ECM_LABELS[SERVER_ALIAS], EM_INSTANCE: ECM_LABELS[EM_INSTANCE], TENANT: "teamA"}


def test_an_empty_request_removes_every_modifiable_label_and_keeps_the_rest():
    result = replace_modifiable(ECM_LABELS, {})
    assert result == {SERVER_ALIAS: ECM_LABELS[SERVER_ALIAS], EM_INSTANCE: ECM_LABELS[EM_INSTANCE]}


def test_new_modifiable_labels_are_added_after_the_current_ones():
    result = replace_modifiable(ECM_LABELS, {YARN_CLUSTER: "yarn-bdp", TENANT: "teamA", ROUTE: "r1"})
    assert list(result) == [SERVER_ALIAS, EM_INSTANCE, TENANT, ROUTE, YARN_CLUSTER]


def test_non_modifiable_keys_in_the_request_are_ignored_silently():
    request = {SERVER_ALIAS: "something-else", EM_INSTANCE: "junk", ENGINE_TYPE: "spark", TENANT: "teamA", ROUTE: "r1"}
    assert replace_modifiable(ECM_LABELS, request) == ECM_LABELS


def test_the_console_sending_every_label_back_changes_only_what_it_edited():
    request = {**ECM_LABELS, TENANT: "teamC"}
    assert replace_modifiable(ECM_LABELS, request) == {**ECM_LABELS, TENANT: "teamC"}


def test_a_user_creator_label_of_an_engine_can_be_edited():
    engine = {USER_CREATOR: "alice-IDE", ENGINE_TYPE: "python-python3", EM_INSTANCE: ECM_LABELS[EM_INSTANCE]}
    result = replace_modifiable(engine, {USER_CREATOR: "alice-Visualis", ENGINE_TYPE: "python-python3"})
    assert result == {**engine, USER_CREATOR: "alice-Visualis"}


def test_an_invalid_requested_value_raises_before_anything_is_returned():
    current = dict(ECM_LABELS)
    with pytest.raises(LabelError) as caught:
        replace_modifiable(current, {ROUTE: "r2", TENANT: "team-b"})
    assert caught.value.code == 25002
    assert "tenant" in caught.value.message
    assert current == ECM_LABELS


def test_an_invalid_yarn_cluster_raises_25009():
    with pytest.raises(LabelError) as caught:
        replace_modifiable(ECM_LABELS, {YARN_CLUSTER: "bdp"})
    assert caught.value.code == 25009


def test_an_invalid_non_modifiable_value_in_the_request_is_ignored_like_the_key():
    assert replace_modifiable(ECM_LABELS, {ENGINE_TYPE: "spark", TENANT: "teamA", ROUTE: "r1"}) == ECM_LABELS


def test_replace_modifiable_does_not_change_its_arguments():
    current, requested = dict(ECM_LABELS), {TENANT: "teamB"}
    replace_modifiable(current, requested)
    assert current == ECM_LABELS
    assert requested == {TENANT: "teamB"}


# --- CORE matching -------------------------------------------------------------------------------

REQUEST = {USER_CREATOR: "alice-IDE", ENGINE_TYPE: "python-python3", CODE_TYPE: "py"}
ENGINE = {
    USER_CREATOR: "alice-IDE",
    ENGINE_TYPE: "python-python3",
    ENGINE_INSTANCE: "linkis-cg-engineconn-bdp110:12295",
    EM_INSTANCE: "linkis-cg-engineconnmanager-bdp110:9102",
    CODE_TYPE: "python",
}


def test_core_labels_keep_only_core_keys_in_order():
    assert core_labels({**ENGINE, TENANT: "teamA", SERVER_ALIAS: "x"}) == {
        USER_CREATOR: "alice-IDE",
        ENGINE_TYPE: "python-python3",
        TENANT: "teamA",
        SERVER_ALIAS: "x",
    }


def test_a_node_with_the_same_core_labels_matches_whatever_its_optional_labels():
    assert core_match(REQUEST, ENGINE)


def test_a_different_core_value_does_not_match():
    assert not core_match({**REQUEST, USER_CREATOR: "bob-IDE"}, ENGINE)
    assert not core_match({**REQUEST, ENGINE_TYPE: "python-python2"}, ENGINE)


def test_a_node_missing_a_core_label_of_the_request_does_not_match():
    assert not core_match({**REQUEST, TENANT: "teamA"}, ENGINE)


def test_a_tenant_ecm_takes_only_requests_of_that_tenant():
    ecm = {SERVER_ALIAS: ECM_APPLICATION_NAME, EM_INSTANCE: format_em_instance("bdp110:9102"), TENANT: "teamA"}
    assert core_match({SERVER_ALIAS: ECM_APPLICATION_NAME, TENANT: "teamA"}, ecm)
    assert not core_match({SERVER_ALIAS: ECM_APPLICATION_NAME, TENANT: "teamB"}, ecm)
    assert not core_match({SERVER_ALIAS: ECM_APPLICATION_NAME}, ecm)


def test_a_tenant_request_never_lands_on_a_tenant_less_ecm():
    ecm = {SERVER_ALIAS: ECM_APPLICATION_NAME, EM_INSTANCE: format_em_instance("bdp110:9102")}
    assert core_match({SERVER_ALIAS: ECM_APPLICATION_NAME}, ecm)
    assert not core_match({SERVER_ALIAS: ECM_APPLICATION_NAME, TENANT: "teamA"}, ecm)


def test_an_execute_once_engine_is_not_reused_by_ordinary_requests():
    once = {**ENGINE, EXECUTE_ONCE: "true"}
    assert not core_match(REQUEST, once)
    assert core_match({**REQUEST, EXECUTE_ONCE: "true"}, once)


def test_optional_labels_of_the_request_do_not_matter():
    assert core_match({**REQUEST, EM_INSTANCE: "linkis-cg-engineconnmanager-other:1", TASK_ID: "9"}, ENGINE)


def test_empty_core_sets_match():
    assert core_match({CODE_TYPE: "sql"}, {EM_INSTANCE: "x"})


# --- API form ------------------------------------------------------------------------------------


def test_label_json_has_the_fields_the_console_reads():
    assert label_json(TENANT, "teamA") == {
        "labelKey": "tenant",
        "stringValue": "teamA",
        "feature": "CORE",
        "modifiable": True,
        "tenant": "teamA",
    }


def test_label_json_of_user_creator_has_user_and_creator():
    data = label_json(USER_CREATOR, "hadoop-IDE")
    assert data["user"] == "hadoop"
    assert data["creator"] == "IDE"
    assert data["modifiable"] is True
    assert data["feature"] == "CORE"


def test_label_json_of_engine_type_has_type_and_version():
    data = label_json(ENGINE_TYPE, "spark-2.4.3")
    assert (data["engineType"], data["version"], data["modifiable"]) == ("spark", "2.4.3", False)


def test_label_json_of_em_instance_has_the_service_instance():
    data = label_json(EM_INSTANCE, "linkis-cg-engineconnmanager-bdp110:9102")
    assert data["instance"] == "bdp110:9102"
    assert data["serviceName"] == "linkis-cg-engineconnmanager"
    assert data["serviceInstance"] == {
        "applicationName": "linkis-cg-engineconnmanager",
        "instance": "bdp110:9102",
        "registryTimestamp": 0,
        "mappingPorts": None,
        "mappingHost": None,
    }
    assert data["feature"] == "OPTIONAL"
    assert data["modifiable"] is False


def test_label_json_of_engine_instance_has_the_instance():
    data = label_json(ENGINE_INSTANCE, "linkis-cg-engineconn-bdp110:12295")
    assert (data["instance"], data["serviceName"]) == ("bdp110:12295", "linkis-cg-engineconn")


def test_label_json_of_other_keys_has_their_getters():
    assert label_json(YARN_CLUSTER, "yarn-bdp")["clusterName"] == "bdp"
    assert label_json(SERVER_ALIAS, "linkis-cg-engineconn")["alias"] == "linkis-cg-engineconn"
    assert label_json(CODE_TYPE, "sql")["codeType"] == "sql"
    assert label_json(ROUTE, "r1") == {
        "labelKey": "route",
        "stringValue": "r1",
        "feature": "OPTIONAL",
        "modifiable": True,
    }


def test_label_json_of_an_odd_stored_value_has_no_extras_rather_than_failing():
    data = label_json(USER_CREATOR, "legacy")
    assert data == {"labelKey": "userCreator", "stringValue": "legacy", "feature": "CORE", "modifiable": True}


def test_label_json_is_plain_json():
    data = label_json(EM_INSTANCE, format_em_instance("bdp110:9102"))
    assert json.loads(json.dumps(data)) == data
    assert type(data["feature"]) is str


def test_the_label_dataclass_checks_and_serialises():
    label = Label.parse(TENANT, "teamA")
    assert (label.key, label.string_value, label.feature, label.modifiable) == ("tenant", "teamA", "CORE", True)
    assert label.to_json() == label_json(TENANT, "teamA")
    with pytest.raises(LabelError):
        Label.parse(TENANT, "team-a")


def test_the_label_dataclass_is_frozen():
    label = Label(TENANT, "teamA")
    with pytest.raises(AttributeError):
        label.key = "route"  # type: ignore[misc]
