"""Regressions from the hostile-server review (issue 10): errors stay in the tree."""

from __future__ import annotations

import copy
import inspect
import math
import pickle
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from external_messages_async import (
    ExternalMessagesClient,
    RetryPolicy,
    errors,
)
from external_messages_async.errors import (
    AuthenticationError,
    ClientStateError,
    ErrorDetail,
    ExternalMessagesError,
    NotFoundError,
    make_status_error,
)
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import FAST_RETRY

USER, PASSWORD = "alice", "correct-horse"


@pytest.fixture
async def pbx() -> AsyncIterator[FakePortSIPServer]:
    async with FakePortSIPServer(10, users={USER: PASSWORD}) as server:
        yield server


def _data_requests(pbx: FakePortSIPServer) -> int:
    return len([r for r in pbx.requests if "external_messages" in r.path])


# --- a borrowed session made with raise_for_status=True ----------------------


@pytest.fixture
async def strict_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        yield session


def _borrowing(
    pbx: FakePortSIPServer, session: aiohttp.ClientSession
) -> ExternalMessagesClient:
    return ExternalMessagesClient(
        pbx.url, username=USER, password=PASSWORD, session=session, retry=FAST_RETRY
    )


async def test_a_strict_borrowed_session_still_renews_the_token_after_a_401(
    pbx: FakePortSIPServer, strict_session: aiohttp.ClientSession
) -> None:
    wanted = pbx.messages[0]["id"]
    async with _borrowing(pbx, strict_session) as client:
        await client.get(wanted)
        pbx.expire_tokens()

        got = await client.get(wanted)

    assert got.id == wanted
    assert pbx.login_count + pbx.refresh_count == 2


async def test_a_strict_borrowed_session_gives_not_found_without_retrying(
    pbx: FakePortSIPServer, strict_session: aiohttp.ClientSession
) -> None:
    async with _borrowing(pbx, strict_session) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get("no-such-id")

    assert info.value.status == 404
    assert _data_requests(pbx) == 1


@pytest.mark.parametrize(
    ("script", "error", "requests"),
    [
        ([ScriptedResponse(status=503)] * 4, errors.ServerError, 4),
        (
            [ScriptedResponse(status=429, headers={"Retry-After": "3600"})],
            errors.RateLimitError,
            1,
        ),
    ],
    ids=["503", "429"],
)
async def test_a_strict_borrowed_session_ends_in_the_status_error(
    pbx: FakePortSIPServer,
    strict_session: aiohttp.ClientSession,
    script: list[ScriptedResponse],
    error: type[errors.APIStatusError],
    requests: int,
) -> None:
    """503s are retried, then a ServerError; a long Retry-After is read at once."""
    pbx.script(script)
    async with _borrowing(pbx, strict_session) as client:
        with pytest.raises(error) as info:
            await client.get_page(top=3)

    assert info.value.status == script[0].status
    assert _data_requests(pbx) == requests


async def test_a_strict_borrowed_session_retries_a_503_and_succeeds(
    pbx: FakePortSIPServer, strict_session: aiohttp.ClientSession
) -> None:
    pbx.script([ScriptedResponse(status=503)])
    async with _borrowing(pbx, strict_session) as client:
        page = await client.get_page(top=3)

    assert len(page.items) == 3
    assert _data_requests(pbx) == 2


async def test_a_closed_borrowed_session_is_a_client_state_error(
    pbx: FakePortSIPServer,
) -> None:
    session = aiohttp.ClientSession()
    await session.close()

    async with ExternalMessagesClient(
        pbx.url, token="demo-token", session=session
    ) as client:
        with pytest.raises(ClientStateError, match="borrowed aiohttp session"):
            await client.get_page()

    assert pbx.requests == []


# --- a token that is not a header value --------------------------------------

EVIL = "abc\r\nX-Injected: 1"


async def test_a_login_token_with_cr_lf_is_an_authentication_error(
    pbx: FakePortSIPServer,
) -> None:
    pbx.script(
        [
            ScriptedResponse(
                body={"access_token": EVIL, "token_type": "bearer", "expires_in": 60},
                path="/api/login",
            )
        ]
    )
    async with ExternalMessagesClient(
        pbx.url, username=USER, password=PASSWORD, retry=FAST_RETRY
    ) as client:
        with pytest.raises(
            AuthenticationError, match="not a valid HTTP header"
        ) as info:
            await client.get_page()

    assert "abc" not in str(info.value)
    assert "Injected" not in str(info.value)
    assert "Injected" not in repr(info.value.__dict__)
    assert _data_requests(pbx) == 0


@pytest.mark.parametrize("token", [EVIL, "abc\ndef", "abc\x00"])
def test_a_given_token_with_control_characters_is_refused_at_construction(
    token: str,
) -> None:
    with pytest.raises(ValueError, match="header value") as info:
        ExternalMessagesClient("https://pbx.example.com", token=token)

    assert "abc" not in str(info.value)


async def test_a_provider_token_with_cr_lf_is_refused_before_sending(
    pbx: FakePortSIPServer,
) -> None:
    async def provider() -> str:
        return EVIL

    async with ExternalMessagesClient(pbx.url, token_provider=provider) as client:
        with pytest.raises(ValueError, match="header value") as info:
            await client.get_page()

    assert "abc" not in str(info.value)
    assert pbx.requests == []


# --- arguments are checked at the call ---------------------------------------


@pytest.mark.parametrize("timeout", [math.inf, -math.inf, math.nan, 0, -1.0])
def test_a_timeout_that_is_not_finite_and_positive_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be finite and > 0"):
        ExternalMessagesClient("https://pbx.example.com", token="t", timeout=timeout)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"retry": "x"}, "retry"),
        ({"retry": {"max_retries": 1}}, "retry"),
        ({"timeout": "30"}, "timeout"),
        ({"user_scope": "yes"}, "user_scope"),
        ({"max_retries": "3", "retry": RetryPolicy()}, "max_retries"),
        ({"login_flow": 1}, "login_flow"),
        ({"max_concurrency": 2.0}, "max_concurrency"),
        ({"max_response_bytes": "1"}, "max_response_bytes"),
    ],
)
def test_a_constructor_argument_of_the_wrong_type_fails_at_once(
    kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(TypeError, match=name):
        ExternalMessagesClient("https://pbx.example.com", token="t", **kwargs)


def test_an_unknown_login_flow_fails_at_once_even_with_a_token() -> None:
    with pytest.raises(ValueError, match="login_flow"):
        ExternalMessagesClient(
            "https://pbx.example.com",
            token="t",
            login_flow="saml",  # type: ignore[arg-type]  # the point of the test
        )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("backoff_base", math.nan, ValueError),
        ("backoff_cap", math.inf, ValueError),
        ("max_retry_after", math.nan, ValueError),
        ("backoff_base", "1", TypeError),
    ],
)
def test_retry_policy_numbers_must_be_finite(
    field: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]  # wrong on purpose


async def test_get_many_checks_return_exceptions_is_a_bool() -> None:
    async with ExternalMessagesClient("https://pbx.example.com", token="t") as client:
        with pytest.raises(TypeError, match="return_exceptions"):
            await client.get_many(["a"], return_exceptions="yes")  # type: ignore[call-overload]  # wrong on purpose


async def test_get_many_on_a_closed_client_raises_even_when_collecting_errors() -> None:
    client = ExternalMessagesClient("https://pbx.example.com", token="t")
    await client.aclose()

    with pytest.raises(ClientStateError, match="closed"):
        await client.get_many(["a", "b"], return_exceptions=True)


# --- a base_url with credentials never shows them ----------------------------


@pytest.mark.parametrize("password", ["hun@ter2", "hun:ter2", "hun/ter2", "hun%40ter2"])
@pytest.mark.parametrize("scheme", ["ftp", "https"])
def test_a_base_url_password_is_masked_up_to_the_last_at_sign(
    password: str, scheme: str
) -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        ExternalMessagesClient(
            f"{scheme}://admin:{password}@pbx.example.com", token="t"
        )

    message = str(info.value)
    assert "hun" not in message
    assert "ter2" not in message
    assert "admin" not in message


def test_a_refused_base_url_shows_the_host_after_the_mask() -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        ExternalMessagesClient("ftp://admin:hunter2@zz@pbx.example.com", token="t")

    assert "'ftp://***@pbx.example.com'" in str(info.value)


# --- login errors name the path as data errors do -----------------------------


@pytest.mark.parametrize(
    ("flow", "path"),
    [("oauth", "/api/login/oauth/token"), ("json", "/api/auth/sign_in")],
)
async def test_a_refused_login_names_the_full_path(
    pbx: FakePortSIPServer, flow: str, path: str
) -> None:
    async with ExternalMessagesClient(
        pbx.url,
        username=USER,
        password="wrong",
        login_flow=flow,  # type: ignore[arg-type]  # parametrized Literal
        retry=FAST_RETRY,
    ) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_page()

    assert info.value.path == path
    assert f"POST {path} -> " in str(info.value)


# --- every exception travels: pickle and deepcopy ----------------------------

ERROR_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, ExternalMessagesError)
    ),
    key=lambda cls: cls.__name__,
)


def _example(cls: type[ExternalMessagesError]) -> ExternalMessagesError:
    kwargs: dict[str, Any] = {}
    if issubclass(cls, errors.APIStatusError):
        kwargs = {
            "status": 429,
            "errors": (ErrorDetail("RATE", "slow down", {"n": 1}),),
            "body": '{"errors": []}',
            "request_id": "req-1",
            "method": "GET",
            "path": "/api/external_messages",
        }
        if cls is errors.RateLimitError:
            kwargs["retry_after"] = 2.5
    elif issubclass(cls, errors.APIConnectionError):
        kwargs = {"method": "GET", "path": "/api/x"}
    elif cls is errors.ResponseDecodeError:
        kwargs = {"path": "$.items[3]", "body": "<html>"}
    elif cls is errors.PagingError:
        kwargs = {"ignored": "skip"}
    elif cls is errors.ArchiveError:
        kwargs = {"reason": "locked", "path": "archive.sqlite"}
    error = cls(f"{cls.__name__} happened", **kwargs)
    error.resume_skip = 300
    return error


def test_the_tree_has_every_class_in_this_test() -> None:
    assert len(ERROR_CLASSES) == 14


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    "travel",
    [lambda e: pickle.loads(pickle.dumps(e)), copy.deepcopy],
    ids=["pickle", "deepcopy"],
)
def test_every_exception_travels_with_all_its_attributes(
    cls: type[ExternalMessagesError], travel: Any
) -> None:
    error = _example(cls)

    copied = travel(error)

    assert type(copied) is cls
    assert copied is not error
    assert copied.args == error.args
    assert str(copied) == str(error)
    assert vars(copied) == vars(error)
    assert copied.resume_skip == 300


def test_a_travelling_error_keeps_secrets_redacted() -> None:
    error = make_status_error(
        method="GET",
        path="/api/external_messages",
        status=401,
        headers={"X-Request-Id": "r"},
        body=b'{"errors": [{"code": "BAD", "message": "token s3cr3t refused"}]}',
        secrets=("s3cr3t",),
    )

    data = pickle.dumps(error)
    copied = pickle.loads(data)

    assert b"s3cr3t" not in data
    assert "[redacted]" in copied.body
    assert copied.errors[0].message == "token [redacted] refused"


def test_a_password_auth_clock_must_be_callable() -> None:
    from external_messages_async import PasswordAuth

    with pytest.raises(TypeError, match="clock"):
        PasswordAuth(username="u", password="p", clock=5.0)  # type: ignore[arg-type]  # wrong on purpose


async def test_a_custom_auth_header_with_cr_lf_is_refused_before_sending(
    pbx: FakePortSIPServer,
) -> None:
    from external_messages_async import Auth

    class Evil(Auth):
        async def authorization(self, transport: object) -> str | None:
            return f"Bearer {EVIL}"

    async with ExternalMessagesClient(pbx.url, auth=Evil()) as client:
        with pytest.raises(ValueError, match="not a valid HTTP header value") as info:
            await client.get_page()

    assert "abc" not in str(info.value)
    assert pbx.requests == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"trace_configs": "x"}, TypeError),
        ({"trace_configs": [object()]}, TypeError),
        ({"trust_env": 1}, TypeError),
        ({"proxy": "http://user:hunter2@[::1"}, ValueError),
    ],
)
def test_transport_options_are_checked_at_construction(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"trace_configs|trust_env|proxy") as info:
        ExternalMessagesClient("https://pbx.example.com", token="t", **kwargs)

    assert "hunter2" not in str(info.value)
