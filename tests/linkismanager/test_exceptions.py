"""The Linkis error texts and the flattening of validation errors."""

from __future__ import annotations

from linkismanager.linkis.envelope import method_for
from linkismanager.linkis.exceptions import LinkisAPIError, coded_message, flatten_errors


def test_coded_messages_have_the_linkis_form():
    assert coded_message(21001, "instance cannot be null(请求参数instance不能为空)") == (
        "error code(错误码): 21001, error message(错误信息): instance cannot be null(请求参数instance不能为空)."
    )


def test_a_coded_api_error_carries_error_msg():
    error = LinkisAPIError("no such engine", code=210003)
    assert error.status_code == 400
    assert error.message.startswith("error code(错误码): 210003")
    assert error.data["errorMsg"]["errCode"] == 210003


def test_api_error_status_sets_the_http_status():
    assert LinkisAPIError("x", linkis_status=3).status_code == 403
    assert LinkisAPIError("x", linkis_status=-1).status_code == 401
    assert LinkisAPIError("x", linkis_status=2).status_code == 412
    assert LinkisAPIError("x", linkis_status=4).status_code == 206


def test_validation_errors_are_flattened_with_field_paths():
    detail = {"labels": {"engineType": ["This field is required."]}, "instances": [{}, {"instance": ["Too long."]}]}
    assert flatten_errors(detail) == [
        "labels.engineType: This field is required.",
        "instances[1].instance: Too long.",
    ]


def test_method_drops_the_rest_prefix():
    assert method_for("/api/rest_j/v1/linkisManager/askEngineConn") == "/api/linkisManager/askEngineConn"
