"""The session's side of the pluggable auth: header per attempt, replay, close, POST."""

from __future__ import annotations

import logging

import orjson
import pytest
from aiohttp import web

from external_messages_async import (
    Auth,
    AuthenticationError,
    AuthTransport,
    ExternalMessagesClient,
    RetryPolicy,
)

from .conftest import FAST_RETRY, LoopbackServer, json_response

PAGE = {"count": 4, "items": []}


class RotatingAuth(Auth):
    """Hands out a new token after each 401, like a refreshing strategy."""

    manages_token = True

    def __init__(self, *, renew: bool = True, fail_close: bool = False) -> None:
        self.version = 1
        self.renew = renew
        self.fail_close = fail_close
        self.refused: list[str | None] = []

    async def authorization(self, transport: AuthTransport) -> str | None:
        return f"Bearer token-{self.version}"

    async def on_unauthorized(self, transport: AuthTransport, sent: str | None) -> bool:
        self.refused.append(sent)
        self.version += 1
        return self.renew

    async def aclose(self, transport: AuthTransport) -> None:
        if self.fail_close:
            raise OSError("revoke failed")


def accept_only(token: str):  # type: ignore[no-untyped-def]  # returns a local handler; its type adds nothing
    def respond(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        return json_response(PAGE)

    return respond


async def test_the_header_is_asked_for_before_every_attempt(
    server: LoopbackServer,
) -> None:
    server.answer(accept_only("token-2"))
    auth = RotatingAuth()

    async with ExternalMessagesClient(
        server.url, auth=auth, retry=FAST_RETRY
    ) as client:
        total = await client.count()

    assert total == 4
    assert [r.headers["Authorization"] for r in server.requests] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert auth.refused == ["Bearer token-1"]


async def test_a_401_is_replayed_once_only(server: LoopbackServer) -> None:
    server.answer(accept_only("never"))
    auth = RotatingAuth()

    async with ExternalMessagesClient(
        server.url, auth=auth, retry=FAST_RETRY
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.count()

    assert len(server.requests) == 2
    assert auth.refused == ["Bearer token-1"]


async def test_a_401_is_final_when_the_auth_cannot_renew(
    server: LoopbackServer,
) -> None:
    server.answer(accept_only("token-2"))
    auth = RotatingAuth(renew=False)

    async with ExternalMessagesClient(
        server.url, auth=auth, retry=FAST_RETRY
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.count()

    assert len(server.requests) == 1


async def test_the_default_auth_sends_no_header(server: LoopbackServer) -> None:
    server.answer(lambda request: json_response(PAGE))

    async with ExternalMessagesClient(server.url, auth=Auth()) as client:
        await client.count()

    assert "Authorization" not in server.requests[0].headers


async def test_a_failing_auth_close_still_closes_the_pool(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.answer(lambda request: json_response(PAGE))
    caplog.set_level(logging.DEBUG, logger="external_messages_async")
    client = ExternalMessagesClient(server.url, auth=RotatingAuth(fail_close=True))
    await client.count()
    session = client._http.transport.session

    await client.aclose()

    assert session is not None
    assert session.closed
    assert client.closed
    assert any("OSError" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("form", "json", "content_type"),
    [
        ({"grant_type": "password"}, None, "application/x-www-form-urlencoded"),
        (None, {"username": "u"}, "application/json"),
    ],
)
async def test_post_sends_one_attempt_under_the_api_root(
    server: LoopbackServer,
    form: dict[str, str] | None,
    json: dict[str, str] | None,
    content_type: str,
) -> None:
    bodies: list[bytes] = []

    async def record(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(status=503)

    server.answer(record)

    async with ExternalMessagesClient(
        server.url, auth=Auth(), retry=RetryPolicy(max_retries=3)
    ) as client:
        response = await client._http.post(
            "login/oauth/token", form=form, json=json, token="tok"
        )

    assert response.status == 503
    assert len(server.requests) == 1
    seen = server.requests[0]
    assert (seen.method, seen.path) == ("POST", "/api/login/oauth/token")
    assert seen.headers["Authorization"] == "Bearer tok"
    assert seen.headers["Content-Type"].startswith(content_type)
    if json is not None:
        assert orjson.loads(bodies[0]) == json
    else:
        assert bodies[0] == b"grant_type=password"
