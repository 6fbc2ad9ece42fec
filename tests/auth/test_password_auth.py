"""``PasswordAuth`` driven directly, through a scripted transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from external_messages_async import Auth, PasswordAuth, ServerError, TokenAuth
from external_messages_async._auth import RawResponse

from .conftest import PASSWORD, FakeClock


class ScriptedTransport:
    """Answers token requests from a script and records what was posted."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.posted: list[tuple[str, Mapping[str, str] | None, str | None]] = []

    async def post(
        self,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> RawResponse:
        self.posted.append((path, form if form is not None else json, token))
        status, body = self.answers.pop(0)
        return RawResponse(status=status, headers={}, body=orjson.dumps(body))


def tokens(n: int, **extra: Any) -> dict[str, Any]:
    return {"access_token": f"acc-{n}", "refresh_token": f"ref-{n}", **extra}


def grant(entry: tuple[str, Mapping[str, str] | None, str | None]) -> str | None:
    assert entry[1] is not None
    return entry[1].get("grant_type")


async def test_stale_401_after_another_task_renewed_just_replays() -> None:
    transport = ScriptedTransport((200, tokens(1)))
    auth = PasswordAuth(username="alice", password=PASSWORD)
    header = await auth.authorization(transport)

    replay = await auth.on_unauthorized(transport, "Bearer acc-from-before")

    assert header == "Bearer acc-1"
    assert replay is True
    assert len(transport.posted) == 1


async def test_401_on_the_current_token_refreshes_it() -> None:
    transport = ScriptedTransport((200, tokens(1)), (200, tokens(2)))
    auth = PasswordAuth(username="alice", password=PASSWORD)
    await auth.authorization(transport)

    replay = await auth.on_unauthorized(transport, "Bearer acc-1")

    assert replay is True
    assert grant(transport.posted[1]) == "refresh_token"
    assert await auth.authorization(transport) == "Bearer acc-2"


async def test_without_a_refresh_token_the_password_logs_in_again() -> None:
    clock = FakeClock()
    first = {"access_token": "acc-1", "expires_in": 100}
    transport = ScriptedTransport((200, first), (200, tokens(2, expires_in=100)))
    auth = PasswordAuth(username="alice", password=PASSWORD, clock=clock)
    await auth.authorization(transport)
    clock.advance(95)

    header = await auth.authorization(transport)

    assert header == "Bearer acc-2"
    assert [grant(p) for p in transport.posted] == ["password", "password"]


async def test_without_expires_in_only_a_401_renews_the_token() -> None:
    clock = FakeClock()
    transport = ScriptedTransport((200, tokens(1)), (200, tokens(2)))
    auth = PasswordAuth(username="alice", password=PASSWORD, clock=clock)
    await auth.authorization(transport)
    clock.advance(1e6)

    still = await auth.authorization(transport)
    await auth.on_unauthorized(transport, still)

    assert still == "Bearer acc-1"
    assert await auth.authorization(transport) == "Bearer acc-2"


async def test_a_failing_refresh_endpoint_is_an_error_not_a_relogin() -> None:
    """Only a refusal means the refresh token is spent; a 5xx is the server's fault."""
    clock = FakeClock()
    transport = ScriptedTransport((200, tokens(1, expires_in=100)), (503, {}))
    auth = PasswordAuth(username="alice", password=PASSWORD, clock=clock)
    await auth.authorization(transport)
    clock.advance(95)

    with pytest.raises(ServerError):
        await auth.authorization(transport)

    assert len(transport.posted) == 2


async def test_revoke_sends_the_obtained_token_once() -> None:
    transport = ScriptedTransport((200, tokens(1)), (200, {}))
    auth = PasswordAuth(username="alice", password=PASSWORD)
    await auth.authorization(transport)

    await auth.aclose(transport)
    await auth.aclose(transport)

    assert transport.posted[1] == ("login/oauth/revoke", None, "acc-1")
    assert len(transport.posted) == 2


async def test_static_strategies_keep_their_defaults() -> None:
    transport = ScriptedTransport()

    assert await Auth().authorization(transport) is None
    assert await Auth().on_unauthorized(transport, None) is False
    assert await TokenAuth("tok").on_unauthorized(transport, "Bearer tok") is False
    assert Auth.manages_token is False
    assert TokenAuth.manages_token is False
    assert PasswordAuth.manages_token is True


@pytest.mark.parametrize(("token", "error"), [(5, TypeError), ("  ", ValueError)])
def test_token_auth_checks_its_token(token: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        TokenAuth(token)  # type: ignore[arg-type]  # wrong on purpose
