"""A fuzz target over the response decoding path: status, headers, body in;
a model or one of the package's own exceptions out, never anything else.

Runs briefly in the suite (300 examples per target) and longer under
``nox -s fuzz`` (``FUZZ_EXAMPLES=20000``).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from external_messages_async import ExternalMessage, Page, RetryPolicy
from external_messages_async._auth import RawResponse
from external_messages_async._converter import (
    decode_json,
    structure_message,
    structure_page,
)
from external_messages_async._login import TokenSet, read_token_answer
from external_messages_async._retry import decide_retry, parse_retry_after
from external_messages_async.errors import (
    APIStatusError,
    ExternalMessagesError,
    make_status_error,
)
from external_messages_async.testing import generate_messages

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
POLICY = RetryPolicy(max_retries=3, backoff_base=0.001, max_retry_after=60)
NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)

VALID_PAGE = orjson.dumps({"count": 7, "items": generate_messages(3, seed=4)})
VALID_ITEM = orjson.dumps(generate_messages(1, seed=5)[0])
VALID_ERROR = orjson.dumps(
    {"errors": [{"code": "VALIDATE_FAILED", "message": "bad", "detail": {"x": 1}}]}
)
VALID_TOKENS = orjson.dumps(
    {"access_token": "a", "refresh_token": "r", "expires_in": 60}
)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """Valid JSON with a few bytes flipped, cut, inserted or deleted."""
    body = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        if not body:
            break
        where = draw(st.integers(0, len(body) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if action == "flip":
            body[where] = draw(st.integers(0, 255))
        elif action == "cut":
            del body[where:]
        elif action == "insert":
            body[where:where] = draw(
                st.sampled_from(
                    [b'"', b"{", b"]", b",", b"null", b"\\u0000", b"\xff", b"1e999"]
                )
            )
        else:
            del body[where]
    return bytes(body)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what orjson reads and writes
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def reshaped(draw: st.DrawFn, valid: bytes) -> bytes:
    """Valid JSON with one key or element replaced by any JSON value."""
    data = orjson.loads(valid)
    value = draw(json_values)
    if isinstance(data, dict) and data:
        key = draw(st.sampled_from(sorted(data)))
        if key == "items" and data["items"] and draw(st.booleans()):
            index = draw(st.integers(0, len(data["items"]) - 1))
            item = data["items"][index]
            field = draw(st.sampled_from(sorted(item)))
            item[field] = value
        else:
            data[key] = value
    return orjson.dumps(data)


def bodies(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(valid),
        mutated(valid),
        reshaped(valid),
        json_values.map(orjson.dumps),
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        st.sampled_from(
            [
                b"",
                b"<html><body>Login</body></html>",
                b"null",
                b"[]",
                b"{}",
                b"\xef\xbb\xbf{}",
            ]
        ),
    )


retry_after = st.one_of(
    st.text(max_size=40),
    st.integers(-10, 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes(timezones=st.just(timezone.utc)).map(
        lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")
    ),
)
headers = st.dictionaries(
    st.sampled_from(
        ["Retry-After", "X-Request-Id", "Content-Type", "Request-Id", "X-Other"]
    ),
    retry_after,
    max_size=4,
).map(lambda h: CIMultiDictProxy(CIMultiDict(h)))
statuses = st.one_of(
    st.integers(100, 599), st.sampled_from([200, 400, 401, 404, 429, 500, 503])
)


def decode(status: int, headers: Any, body: bytes, *, kind: str) -> Any:
    """The client's decoding path for one answer, as ``HTTPSession`` and the client run it."""
    decision = decide_retry(
        retries_done=0, policy=POLICY, status=status, headers=headers, now=NOW
    )
    assert decision.delay >= 0
    if not 200 <= status < 300:
        error = make_status_error(
            method="GET",
            path="/api/external_messages",
            status=status,
            headers=headers,
            body=body,
            retry_after=decision.retry_after,
            secrets=("tok",),
        )
        assert isinstance(error, APIStatusError)
        assert error.status == status
        assert "tok" not in error.body
        raise error
    data = decode_json(body)
    if kind == "page":
        return structure_page(data, skip=0)
    return structure_message(data)


def check(status: int, headers: Any, body: bytes, kind: str) -> None:
    try:
        result = decode(status, headers, body, kind=kind)
    except ExternalMessagesError as exc:
        str(exc)  # the message itself must build
        return
    assert isinstance(result, Page if kind == "page" else ExternalMessage)


@given(statuses, headers, bodies(VALID_PAGE))
@FUZZ
def test_fuzz_list_answers(status: int, headers: Any, body: bytes) -> None:
    check(status, headers, body, "page")


@given(statuses, headers, bodies(VALID_ITEM))
@FUZZ
def test_fuzz_get_answers(status: int, headers: Any, body: bytes) -> None:
    check(status, headers, body, "item")


@given(statuses, headers, bodies(VALID_ERROR))
@FUZZ
def test_fuzz_error_answers(status: int, headers: Any, body: bytes) -> None:
    check(status, headers, body, "page")


@given(statuses, headers, bodies(VALID_TOKENS))
@FUZZ
def test_fuzz_token_answers(status: int, headers: Any, body: bytes) -> None:
    response = RawResponse(status=status, headers=headers, body=body)

    try:
        result: object = read_token_answer(
            response, path="login/oauth/token", now=0.0, secrets=("pw",)
        )
    except ExternalMessagesError as exc:
        result = exc

    if isinstance(result, ExternalMessagesError):
        assert "pw" not in getattr(result, "body", "")
    else:
        assert isinstance(result, TokenSet)
        assert result.access_token


@given(retry_after)
@FUZZ
def test_fuzz_retry_after(value: str) -> None:
    seconds = parse_retry_after(value, NOW)

    assert seconds is None or seconds >= 0
