"""LoadInstance arithmetic and comparisons, sizes, and the JSON forms of resources (no database)."""

from __future__ import annotations

import json
import math

import pytest

from linkismanager.exceptions import ManagerError
from linkismanager.resources import (
    GB,
    KB,
    MAX_COUNT,
    MAX_MEMORY,
    MB,
    PB,
    TB,
    LoadInstance,
    ResourceError,
    format_size,
    log_json,
    parse_size,
    resource_json,
)

# --- LoadInstance --------------------------------------------------------------------------------


def test_it_adds_and_subtracts_component_by_component():
    a, b = LoadInstance(4 * GB, 4, 3), LoadInstance(1 * GB, 1, 1)
    assert a + b == LoadInstance(5 * GB, 5, 4)
    assert a - b == LoadInstance(3 * GB, 3, 2)


def test_subtraction_may_go_negative_and_says_so():
    left = LoadInstance(1 * GB, 1, 1) - LoadInstance(2 * GB, 1, 0)
    assert left == LoadInstance(-1 * GB, 0, 1)
    assert left.any_negative()
    assert left.clamp_zero() == LoadInstance(0, 0, 1)


def test_clamp_zero_leaves_non_negative_values_alone():
    value = LoadInstance(GB, 2, 3)
    assert value.clamp_zero() == value
    assert not value.any_negative()


@pytest.mark.parametrize("value", [LoadInstance(-1, 0, 0), LoadInstance(0, -1, 0), LoadInstance(0, 0, -1)])
def test_any_negative_looks_at_every_component(value):
    assert value.any_negative()


def test_zero_is_all_zeros():
    assert LoadInstance.ZERO == LoadInstance(0, 0, 0)
    assert LoadInstance.ZERO.is_zero()
    assert not LoadInstance(0, 0, 1).is_zero()
    assert not LoadInstance(1, 0, 0).is_zero()


def test_total_sums_resources():
    items = [LoadInstance(GB, 1, 1), LoadInstance(2 * GB, 2, 1), LoadInstance(0, 1, 0)]
    assert LoadInstance.total(items) == LoadInstance(3 * GB, 4, 2)
    assert LoadInstance.total([]) == LoadInstance.ZERO


def test_not_less_than_needs_every_component_at_least_the_other():
    limit = LoadInstance(4 * GB, 4, 2)
    assert limit.not_less_than(LoadInstance(4 * GB, 4, 2))
    assert limit.not_less_than(LoadInstance(1 * GB, 1, 1))
    assert not limit.not_less_than(LoadInstance(4 * GB + 1, 1, 1))
    assert not limit.not_less_than(LoadInstance(1, 5, 1))
    assert not limit.not_less_than(LoadInstance(1, 1, 3))


def test_more_than_needs_every_component_strictly_greater():
    value = LoadInstance(4 * GB, 4, 2)
    assert value.more_than(LoadInstance(1 * GB, 1, 1))
    assert not value.more_than(LoadInstance(4 * GB, 1, 1))
    assert not value.more_than(LoadInstance(1, 4, 1))
    assert not value.more_than(LoadInstance(1, 1, 2))
    assert not value.more_than(value)


def test_it_is_immutable_and_hashable():
    value = LoadInstance(GB, 1, 1)
    with pytest.raises(AttributeError):
        value.memory = 0  # type: ignore[misc]
    assert {value, LoadInstance(GB, 1, 1)} == {value}


@pytest.mark.parametrize("bad", [1.5, "1", None, True])
def test_it_refuses_components_that_are_not_ints(bad):
    with pytest.raises(TypeError):
        LoadInstance(bad, 1, 1)
    with pytest.raises(TypeError):
        LoadInstance(1, bad, 1)
    with pytest.raises(TypeError):
        LoadInstance(1, 1, bad)


def test_arithmetic_with_other_types_is_a_type_error():
    with pytest.raises(TypeError):
        LoadInstance(1, 1, 1) + 1  # noqa: B018
    with pytest.raises(TypeError):
        LoadInstance(1, 1, 1) - {"memory": 1}  # noqa: B018


def test_describe_is_a_short_human_text():
    assert LoadInstance(2 * GB, 1, 1).describe() == "2.0 GB memory, 1 core, 1 instance"
    assert LoadInstance(512 * MB, 2, 3).describe() == "512.0 MB memory, 2 cores, 3 instances"


# --- JSON ----------------------------------------------------------------------------------------


def test_to_json_has_instances_and_its_alias_instance():
    assert LoadInstance(2147483648, 1, 1).to_json() == {"memory": 2147483648, "cores": 1, "instances": 1, "instance": 1}


def test_it_round_trips_through_json():
    value = LoadInstance(3 * GB, 2, 4)
    assert LoadInstance.from_json(json.loads(json.dumps(value.to_json()))) == value


@pytest.mark.parametrize(
    "obj",
    [
        {"memory": 2147483648, "cores": 1, "instances": 1},
        {"memory": 2147483648, "cores": 1, "instance": 1},
        {"memory": 2147483648, "cores": 1, "instances": 1, "instance": 1},
        {"memory": "2147483648", "cores": "1", "instances": "1"},
        {"memory": "2g", "cores": 1, "instance": "1"},
        {"memory": "2 GB", "cores": " 1 ", "instances": 1},
        {"memory": 2147483648.0, "cores": 1.0, "instances": 1.0},
    ],
)
def test_from_json_accepts_what_clients_send(obj):
    assert LoadInstance.from_json(obj) == LoadInstance(2 * GB, 1, 1)


def test_from_json_accepts_zero():
    assert LoadInstance.from_json({"memory": 0, "cores": 0, "instances": 0}) == LoadInstance.ZERO


def test_from_json_ignores_other_keys():
    assert LoadInstance.from_json({"memory": 1, "cores": 1, "instances": 1, "extra": "x"}) == LoadInstance(1, 1, 1)


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"memory": -1, "cores": 1, "instances": 1}, "resource.memory"),
        ({"memory": "-1g", "cores": 1, "instances": 1}, "resource.memory"),
        ({"memory": True, "cores": 1, "instances": 1}, "resource.memory"),
        ({"memory": "lots", "cores": 1, "instances": 1}, "resource.memory"),
        ({"memory": None, "cores": 1, "instances": 1}, "resource.memory"),
        ({"memory": [1], "cores": 1, "instances": 1}, "resource.memory"),
        ({"memory": 1, "cores": -1, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": "-1", "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": True, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": 1.5, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": "1.5", "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": "one", "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": "", "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": "1_000", "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": "+1", "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": None, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": math.nan, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": math.inf, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": MAX_COUNT + 1, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": "9" * 5000, "instances": 1}, "resource.cores"),
        ({"memory": 1, "cores": 1, "instances": -1}, "resource.instances"),
        ({"memory": 1, "cores": 1, "instances": False}, "resource.instances"),
        ({"memory": 1, "cores": 1, "instance": "x"}, "resource.instance"),
    ],
)
def test_from_json_refuses_bad_amounts_naming_the_field(obj, field):
    with pytest.raises(ResourceError) as caught:
        LoadInstance.from_json(obj)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"Invalid {field} ")


@pytest.mark.parametrize("missing", ["memory", "cores"])
def test_from_json_requires_memory_and_cores(missing):
    obj = {"memory": 1, "cores": 1, "instances": 1}
    del obj[missing]
    with pytest.raises(ResourceError) as caught:
        LoadInstance.from_json(obj)
    assert caught.value.message == f"resource.{missing} is required"


def test_from_json_requires_instances_or_instance():
    with pytest.raises(ResourceError) as caught:
        LoadInstance.from_json({"memory": 1, "cores": 1})
    assert caught.value.message == "resource.instances is required"


def test_from_json_refuses_instances_and_instance_that_disagree():
    with pytest.raises(ResourceError) as caught:
        LoadInstance.from_json({"memory": 1, "cores": 1, "instances": 1, "instance": 2})
    assert caught.value.field == "resource.instances"
    assert "disagree" in caught.value.message


@pytest.mark.parametrize("obj", [None, [1, 1, 1], "2g", 5])
def test_from_json_refuses_non_objects(obj):
    with pytest.raises(ResourceError) as caught:
        LoadInstance.from_json(obj)
    assert caught.value.message.startswith("resource must be an object")


def test_from_json_names_fields_under_the_given_prefix():
    with pytest.raises(ResourceError) as caught:
        LoadInstance.from_json({"memory": "2x", "cores": 1, "instances": 1}, field="maxResource")
    assert caught.value.field == "maxResource.memory"
    assert caught.value.message.startswith("Invalid maxResource.memory '2x'")


def test_resource_errors_are_value_errors_and_manager_errors():
    error = ResourceError("bad", field="memory")
    assert isinstance(error, ValueError)
    assert isinstance(error, ManagerError)
    assert error.code is None


# --- parse_size ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        (2147483648, 2 * GB),
        ("2147483648", 2 * GB),
        ("0", 0),
        ("100b", 100),
        ("100B", 100),
        ("1k", KB),
        ("1kb", KB),
        ("1KB", KB),
        ("1K", KB),
        ("512m", 512 * MB),
        ("512mb", 512 * MB),
        ("512 MB", 512 * MB),
        ("512Mb", 512 * MB),
        ("2g", 2 * GB),
        ("2G", 2 * GB),
        ("2gb", 2 * GB),
        ("2 GB", 2 * GB),
        ("  2g  ", 2 * GB),
        ("1t", TB),
        ("1tb", TB),
        ("1 TB", TB),
        ("1p", PB),
        ("1pb", PB),
        ("1.5g", 3 * GB // 2),
        ("0.5k", 512),
        ("1.0", 1),
        ("2.25 MB", 2 * MB + MB // 4),
        ("007m", 7 * MB),
        (2147483648.0, 2 * GB),
    ],
)
def test_it_parses_every_size_form(text, size):
    assert parse_size(text) == size


def test_decimals_round_down_to_whole_bytes():
    assert parse_size("1.3k") == 1331


def test_the_largest_java_long_is_accepted():
    assert parse_size(str(MAX_MEMORY)) == MAX_MEMORY
    assert parse_size(MAX_MEMORY) == MAX_MEMORY


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "expected a number"),
        ("   ", "expected a number"),
        ("abc", "expected a number"),
        ("g", "expected a number"),
        ("2x", "the unit must be one of"),
        ("2 gib", "the unit must be one of"),
        ("2 g b", "expected a number"),
        ("1e3", "expected a number"),
        ("1..5g", "expected a number"),
        (".5g", "expected a number"),
        ("5.g", "expected a number"),
        ("+5", "expected a number"),
        ("1_000", "expected a number"),
        ("１２", "expected a number"),
        ("nan", "expected a number"),
        ("inf", "expected a number"),
        ("-1", "cannot be negative"),
        ("-1g", "cannot be negative"),
        ("- 2 GB", "cannot be negative"),
        (-1, "cannot be negative"),
        (-1.0, "cannot be negative"),
        ("1.5", "must be whole"),
        ("1.5b", "must be whole"),
        (1.5, "whole number"),
        (math.nan, "whole number"),
        (math.inf, "whole number"),
        (-math.inf, "whole number"),
        (True, "expected a number"),
        (None, "expected a number"),
        ([2], "expected a number"),
        (MAX_MEMORY + 1, "cannot exceed"),
        ("8192p", "cannot exceed"),
        ("9" * 5000 + "p", "cannot exceed"),
    ],
)
def test_it_refuses_bad_sizes_naming_the_input(value, reason):
    with pytest.raises(ResourceError) as caught:
        parse_size(value)
    assert caught.value.field == "size"
    assert caught.value.message.startswith(f"Invalid size {repr(value)[:40]}")
    assert reason in caught.value.message


def test_a_refused_size_names_the_field_when_given():
    with pytest.raises(ResourceError) as caught:
        parse_size("lots", field="memory")
    assert caught.value.message.startswith("Invalid memory 'lots': ")
    assert caught.value.field == "memory"


def test_a_huge_refused_value_is_quoted_short():
    with pytest.raises(ResourceError) as caught:
        parse_size("x" * 10000)
    assert len(caught.value.message) < 200


# --- format_size and the history form -----------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0.0 B"),
        (100, "100.0 B"),
        (2 * KB - 1, "2047.0 B"),
        (2 * KB, "2.0 KB"),
        (512 * MB, "512.0 MB"),
        (GB, "1024.0 MB"),
        (2 * GB, "2.0 GB"),
        (3 * GB + GB // 2, "3.5 GB"),
        (2 * GB + GB // 10, "2.1 GB"),
        (2 * GB + GB // 4, "2.3 GB"),
        (2 * MB + MB // 4, "2.3 MB"),
        (2 * TB, "2.0 TB"),
        (1024 * TB, "1024.0 TB"),
        (-2 * GB, "-2.0 GB"),
        (-100, "-100.0 B"),
    ],
)
def test_it_formats_sizes_as_linkis_logs_them(size, text):
    assert format_size(size) == text


@pytest.mark.parametrize("bad", [1.5, "2g", None, True])
def test_format_size_takes_only_ints(bad):
    with pytest.raises(TypeError):
        format_size(bad)


def test_log_json_is_linkis_compact_history_form():
    assert log_json(LoadInstance(2 * GB, 1, 1)) == {"instance": 1, "memory": "2.0 GB", "cpu": 1}
    assert list(log_json(LoadInstance(512 * MB, 2, 3))) == ["instance", "memory", "cpu"]


# --- resource_json -------------------------------------------------------------------------------

MAX = LoadInstance(16 * GB, 8, 10)
MIN = LoadInstance(1 * GB, 1, 0)
USED = LoadInstance(4 * GB, 2, 2)
LOCKED = LoadInstance(2 * GB, 1, 1)


def test_resource_json_is_a_load_instance_node_resource():
    data = resource_json(MAX, MIN, USED, LOCKED)
    assert data == {
        "resourceType": "LoadInstance",
        "maxResource": MAX.to_json(),
        "minResource": MIN.to_json(),
        "usedResource": USED.to_json(),
        "lockedResource": LOCKED.to_json(),
        "leftResource": LoadInstance(10 * GB, 5, 7).to_json(),
        "expectedResource": None,
    }


def test_resource_json_takes_a_given_left_resource():
    left = LoadInstance(1, 1, 1)
    assert resource_json(MAX, MIN, USED, LOCKED, left=left)["leftResource"] == left.to_json()


def test_resource_json_accepts_linkis_names_as_keywords():
    data = resource_json(max=MAX, min=MIN, used=USED, locked=LOCKED)
    assert data["maxResource"]["memory"] == 16 * GB


def test_resource_json_shows_an_over_commitment_as_negative_left():
    data = resource_json(LoadInstance(GB, 1, 1), MIN, LoadInstance(2 * GB, 1, 1), LoadInstance.ZERO)
    assert data["leftResource"] == {"memory": -GB, "cores": 0, "instances": 0, "instance": 0}


def test_resource_json_is_plain_json():
    data = resource_json(MAX, MIN, USED, LOCKED)
    assert json.loads(json.dumps(data)) == data
