"""The one exception tree and the pure status-to-exception mapping."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from external_messages_async import errors
from external_messages_async.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ErrorDetail,
    ExternalMessagesError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    make_status_error,
    parse_error_body,
)

PORTSIP_BODY = (
    b'{"errors":[{"code":"VALIDATE_FAILED","message":"field validation failed",'
    b'"detail":{"field":"top"}}]}'
)


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (ClientStateError, ExternalMessagesError),
        (ClientStateError, RuntimeError),
        (APIConnectionError, ExternalMessagesError),
        (APITimeoutError, APIConnectionError),
        (APIStatusError, ExternalMessagesError),
        (BadRequestError, APIStatusError),
        (AuthenticationError, APIStatusError),
        (PermissionDeniedError, APIStatusError),
        (NotFoundError, APIStatusError),
        (RateLimitError, APIStatusError),
        (ServerError, APIStatusError),
        (ResponseDecodeError, ExternalMessagesError),
    ],
)
def test_the_tree_has_this_shape(child: type, parent: type) -> None:
    assert issubclass(child, parent)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (APIStatusError, APIConnectionError),
        (ResponseDecodeError, APIStatusError),
        (ServerError, APIConnectionError),
        (APITimeoutError, APIStatusError),
    ],
)
def test_branches_of_the_tree_do_not_overlap(one: type, other: type) -> None:
    assert not issubclass(one, other)
    assert not issubclass(other, one)


def test_the_tree_is_drawn_in_the_module_docstring() -> None:
    for name in ("ExternalMessagesError", "APITimeoutError", "RateLimitError"):
        assert name in (errors.__doc__ or "")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (409, APIStatusError),
        (302, APIStatusError),
    ],
)
def test_status_maps_to_its_class(status: int, cls: type[APIStatusError]) -> None:
    error = make_status_error(
        method="GET", path="/api/external_messages", status=status, headers={}, body=b""
    )

    assert type(error) is cls
    assert error.status == status


def test_status_error_carries_portsip_errors_body_and_request_id() -> None:
    error = make_status_error(
        method="GET",
        path="/api/external_messages",
        status=400,
        headers=CIMultiDict({"X-Request-Id": "req-42"}),
        body=PORTSIP_BODY,
    )

    assert error.errors == (
        ErrorDetail(
            code="VALIDATE_FAILED",
            message="field validation failed",
            detail={"field": "top"},
        ),
    )
    assert error.errors[0].code == "VALIDATE_FAILED"
    assert error.errors[0].message == "field validation failed"
    assert error.errors[0].detail == {"field": "top"}
    assert error.code == "VALIDATE_FAILED"
    assert error.body == PORTSIP_BODY.decode()
    assert error.request_id == "req-42"
    assert (error.method, error.path) == ("GET", "/api/external_messages")


def test_status_error_message_is_one_line_with_method_path_status_code_message() -> (
    None
):
    error = make_status_error(
        method="GET",
        path="/api/external_messages",
        status=400,
        headers={},
        body=PORTSIP_BODY,
    )

    assert str(error) == (
        "GET /api/external_messages -> 400 VALIDATE_FAILED: field validation failed"
    )
    assert "\n" not in str(error)


def test_status_error_message_counts_further_errors_and_names_the_request_id() -> None:
    body = b'{"errors":[{"code":"A","message":"first"},{"code":"B"}]}'

    error = make_status_error(
        method="GET", path="/p", status=400, headers={"request-id": "r1"}, body=body
    )

    assert str(error) == "GET /p -> 400 A: first (+1 more) [request id r1]"
    assert [e.code for e in error.errors] == ["A", "B"]


def test_status_error_body_is_cut_short() -> None:
    error = make_status_error(
        method="GET", path="/p", status=502, headers={}, body=b"x" * 100_000
    )

    assert error.body == "x" * errors.BODY_PREVIEW_CHARS
    assert error.errors == ()
    assert error.code is None
    assert str(error) == "GET /p -> 502"


def test_rate_limit_error_has_retry_after_in_seconds() -> None:
    error = make_status_error(
        method="GET", path="/p", status=429, headers={}, body=b"", retry_after=7.0
    )

    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0
    assert "retry after 7s" in str(error)


def test_rate_limit_error_without_retry_after() -> None:
    error = make_status_error(method="GET", path="/p", status=429, headers={}, body=b"")

    assert isinstance(error, RateLimitError)
    assert error.retry_after is None
    assert str(error) == "GET /p -> 429"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"<html>Bad Gateway</html>",
        b"[1, 2]",
        b'{"errors": "nope"}',
        b'{"errors": {"code": "X"}}',
    ],
)
def test_error_bodies_of_other_shapes_give_no_entries(body: bytes) -> None:
    assert parse_error_body(body) == ()


def test_error_entries_without_a_code_get_unknown_and_non_objects_are_skipped() -> None:
    body = b'{"errors": [{"message": 5}, "junk", {"code": "", "message": "m"}]}'

    assert parse_error_body(body) == (
        ErrorDetail(code="UNKNOWN", message="", detail=None),
        ErrorDetail(code="UNKNOWN", message="m", detail=None),
    )


def test_connection_errors_carry_method_and_path() -> None:
    error = APITimeoutError("GET /p timed out", method="GET", path="/p")

    assert (error.method, error.path) == ("GET", "/p")


def test_decode_error_defaults_to_the_root_path() -> None:
    assert ResponseDecodeError("bad").path == "$"


def test_secrets_echoed_in_the_body_are_redacted_everywhere() -> None:
    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"token tok-123 is expired"}]}'

    error = make_status_error(
        method="GET",
        path="/p",
        status=401,
        headers={},
        body=body,
        secrets=("tok-123", ""),
    )

    assert "tok-123" not in str(error)
    assert "tok-123" not in error.body
    assert error.errors[0].message == "token [redacted] is expired"
