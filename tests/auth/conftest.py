"""A loopback PortSIP token server with knobs for every refusal mode.

``AuthServer`` implements the token endpoints of both login flows and the
external-messages reads on 127.0.0.1. It counts logins, refreshes, revocations
and 401s, records every request, and shares a clock with the client under
test when a test needs expiry to happen at an exact moment.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import attrs
import pytest
from aiohttp import web

from external_messages_async import ExternalMessagesClient
from external_messages_async._login import CLIENT_ID
from tests.conftest import FAST_RETRY, SecretWatch, watching_secrets
from tests.conftest import FakeClock as FakeClock  # the auth tests import it here

USERNAME = "alice"
PASSWORD = "pw-Sup3r-S3cret-4b1d"
TWO_FACTOR_USER = "bob"
TWO_FACTOR_CHALLENGE_PREFIX = "2fa-session-"
LOGIN_FAILED = "Login failed, authentication error"


@attrs.define
class Recorded:
    """One request the server saw."""

    method: str
    path: str
    authorization: str | None
    fields: dict[str, Any]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"errors": [{"code": code, "message": message}]}, status=status
    )


class AuthServer:
    """The token endpoints of both flows, plus message reads, on 127.0.0.1."""

    def __init__(
        self,
        *,
        lifetime: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        messages: int = 30,
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self.messages = [
            {"id": f"m{i:04d}", "content": f"text {i}"} for i in range(messages)
        ]
        self.users = {USERNAME: PASSWORD, TWO_FACTOR_USER: PASSWORD}
        self.static_tokens: set[str] = set()
        # Knobs a test may turn.
        self.refuse_refresh = False
        self.always_401 = False
        self.revoke_status = 200
        self.drop_revoke = False
        self.login_delay = 0.0
        #: Logins wait until this is set (clear it to hold them on the wire).
        self.login_gate = asyncio.Event()
        self.login_gate.set()
        #: Called before each list page is answered, e.g. to move a FakeClock.
        self.on_page: Callable[[], None] = lambda: None
        self.data_script: list[int] = []
        # What happened.
        self.requests: list[Recorded] = []
        self.logins = 0
        self.refreshes = 0
        self.unauthorized = 0
        self.revoked: list[str] = []
        self.issued: list[str] = []
        self._access: dict[str, float] = {}
        self._refresh: dict[str, str] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/login/oauth/token", self._oauth_token)
        app.router.add_post("/api/login/oauth/revoke", self._revoke)
        app.router.add_post("/api/auth/sign_in", self._sign_in)
        app.router.add_post("/api/auth/refresh_token", self._json_refresh)
        app.router.add_post("/api/auth/sign_out", self._revoke)
        app.router.add_get("/api/external_messages", self._list)
        app.router.add_get("/api/external_messages/{id}", self._get)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # started above
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    # -- what tests look at ----------------------------------------------------
    def paths(self) -> list[str]:
        """Return ``METHOD path`` of every request, in order."""
        return [f"{r.method} {r.path}" for r in self.requests]

    def data_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/api/external_messages")]

    def expire_all(self) -> None:
        """Make every issued access token invalid; refresh tokens keep working."""
        self._access.clear()

    def secrets(self) -> list[str]:
        """Every secret that crossed the wire: the password and every token."""
        return [PASSWORD, *self.issued, *self.static_tokens]

    # -- tokens ----------------------------------------------------------------
    def _issue(self) -> dict[str, Any]:
        access = f"acc-{secrets.token_hex(12)}"
        refresh = f"ref-{secrets.token_hex(12)}"
        self.issued += [access, refresh]
        self._access[access] = self.clock() + self.lifetime
        self._refresh[refresh] = access
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.lifetime,
            "token_type": "Bearer",
        }

    def _bearer_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        if token in self.static_tokens:
            return True
        expires_at = self._access.get(token)
        return expires_at is not None and self.clock() < expires_at

    async def _record(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            fields = await request.json()
        else:
            fields = dict(await request.post())
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                request.headers.get("Authorization"),
                fields,
            )
        )
        return fields  # type: ignore[no-any-return]  # decoded JSON

    def _password_login(self, fields: dict[str, Any]) -> web.Response | None:
        if self.users.get(fields.get("username", "")) != fields.get("password"):
            return _error(400, "UNAUTHORIZED", LOGIN_FAILED)
        return None

    def _refresh_answer(self, refresh_token: Any) -> web.Response:
        if self.refuse_refresh or refresh_token not in self._refresh:
            return _error(400, "UNAUTHORIZED", "refresh token is invalid or expired")
        old = self._refresh.pop(refresh_token)
        self._access.pop(old, None)
        self.refreshes += 1
        return web.json_response(self._issue())

    # -- handlers --------------------------------------------------------------
    async def _oauth_token(self, request: web.Request) -> web.Response:
        fields = await self._record(request)
        if fields.get("client_id") != CLIENT_ID:
            return _error(400, "VALIDATE_FAILED", "bad client_id")
        if fields.get("grant_type") == "refresh_token":
            return self._refresh_answer(fields.get("refresh_token"))
        if fields.get("grant_type") != "password" or fields.get("scope") != "all":
            return _error(400, "VALIDATE_FAILED", "bad grant")
        await asyncio.sleep(self.login_delay)
        await self.login_gate.wait()
        refused = self._password_login(fields)
        if refused is not None:
            return refused
        self.logins += 1
        return web.json_response(self._issue())

    async def _sign_in(self, request: web.Request) -> web.Response:
        fields = await self._record(request)
        await asyncio.sleep(self.login_delay)
        await self.login_gate.wait()
        refused = self._password_login(fields)
        if refused is not None:
            return refused
        self.logins += 1
        if fields["username"] == TWO_FACTOR_USER:
            challenge = TWO_FACTOR_CHALLENGE_PREFIX + secrets.token_hex(8)
            self.issued.append(challenge)
            return web.json_response({"two_factor_enabled": True, "token": challenge})
        return web.json_response(self._issue())

    async def _json_refresh(self, request: web.Request) -> web.Response:
        fields = await self._record(request)
        return self._refresh_answer(fields.get("refresh_token"))

    async def _revoke(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.drop_revoke:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.revoked.append(token)
        self._access.pop(token, None)
        return web.json_response({}, status=self.revoke_status)

    async def _check_data_call(self, request: web.Request) -> web.Response | None:
        await self._record(request)
        if self.data_script:
            status = self.data_script.pop(0)
            return _error(status, "SCRIPTED", "scripted answer")
        if self.always_401 or not self._bearer_ok(request):
            self.unauthorized += 1
            return _error(401, "UNAUTHORIZED", "token expired or invalid")
        return None

    async def _list(self, request: web.Request) -> web.Response:
        refused = await self._check_data_call(request)
        if refused is not None:
            return refused
        self.on_page()
        skip = int(request.query.get("skip", "0"))
        top = int(request.query.get("top", "100"))
        page = self.messages[skip : skip + top]
        return web.json_response({"count": len(self.messages), "items": page})

    async def _get(self, request: web.Request) -> web.Response:
        refused = await self._check_data_call(request)
        if refused is not None:
            return refused
        return web.json_response({"id": request.match_info["id"], "content": "hello"})


ServerFactory = Callable[..., Awaitable[AuthServer]]


@pytest.fixture(autouse=True)
def secret_watch(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[SecretWatch]:
    """Capture every log record at DEBUG; no secret may be in them or in the output."""
    with watching_secrets(caplog, capsys, PASSWORD) as watch:
        yield watch


@pytest.fixture
async def make_server(secret_watch: SecretWatch) -> AsyncIterator[ServerFactory]:
    """Start ``AuthServer`` instances; every one is stopped after the test."""
    started: list[AuthServer] = []

    async def make(**options: Any) -> AuthServer:
        server = AuthServer(**options)
        await server.start()
        started.append(server)
        secret_watch.add_source(server.secrets)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def server(make_server: ServerFactory) -> AuthServer:
    """A server with hour-long tokens."""
    return await make_server()


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., ExternalMessagesClient]]:
    """Make clients with fast retries; close any the test left open."""
    made: list[ExternalMessagesClient] = []

    def make(server: AuthServer, **options: Any) -> ExternalMessagesClient:
        options.setdefault("retry", FAST_RETRY)
        client = ExternalMessagesClient(server.url, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
