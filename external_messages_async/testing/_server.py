"""The fake PortSIP PBX: an aiohttp application, its handlers and its lifecycle."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import threading
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any

from aiohttp import web

from ._auth import TokenStore
from ._data import generate_messages
from ._faults import Faults, ScriptedResponse
from ._handlers import Handlers
from ._store import MessageStore
from ._wire import RecordedRequest

ListPageHook = Callable[["FakePortSIPServer", int, int], Awaitable[None] | None]
"""``hook(server, skip, top)``, run before a list page is served; may be async."""

_DATA_PREFIXES = ("/api/external_messages/", "/api/user/external_messages/")


class FakePortSIPServer:
    """A PortSIP PBX stand-in serving external messages over loopback HTTP.

    It answers the list and get endpoints (``/api/external_messages`` and
    ``/api/user/external_messages``, which serve the same data), the OAuth-style
    and JSON login endpoints, and checks bearer tokens. It records every
    request, counts concurrent ones, and can inject faults or play scripted
    answers. Use it as an async context manager, or from synchronous code with
    :meth:`run_in_thread`.

    Lists are ordered by ``created_at`` descending unless ``orderby`` is given;
    messages without a valid ``created_at`` come last and ties keep their
    order in :attr:`messages`.

    Args:
        messages: How many messages to generate with :func:`generate_messages`,
            or the message dicts to serve (copied).
        seed: Seed for generated messages.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        token: Static bearer token always accepted besides issued ones;
            ``None`` accepts issued tokens only.
        auth_required: Whether data requests need a valid bearer token;
            ``False`` serves anyone.
        users: Username to password accepted at login.
        domains: Tenant domains accepted at login; ``None`` accepts any.
        two_factor_users: Users whose ``/auth/sign_in`` answers a two-factor
            challenge instead of tokens.
        token_lifetime: Seconds an issued access token lives.
        refresh_token_lifetime: Seconds a refresh token lives.
        faults: Random faults injected into data requests.
        on_list_page: Hook run before each list page, e.g. to insert messages
            while a client pages.
        max_body_bytes: Largest request body accepted.
        preserialize: Cache filtered views and encoded messages (see
            :meth:`messages_changed`).
        shutdown_timeout: Seconds :meth:`close` waits for busy handlers.
    """

    def __init__(
        self,
        messages: int | Sequence[Mapping[str, Any]] = 100,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = "demo-token",
        auth_required: bool = True,
        users: Mapping[str, str] | None = None,
        domains: Collection[str] | None = None,
        two_factor_users: Collection[str] = (),
        token_lifetime: float = 3600.0,
        refresh_token_lifetime: float = 86400.0,
        faults: Faults | None = None,
        on_list_page: ListPageHook | None = None,
        max_body_bytes: int = 1 << 20,
        preserialize: bool = True,
        shutdown_timeout: float = 0.25,
    ) -> None:
        data = (
            generate_messages(messages, seed)
            if isinstance(messages, int)
            else [dict(m) for m in messages]
        )
        self._store = MessageStore(data, preserialize=preserialize)
        self._tokens = TokenStore(
            static_token=token,
            users={"admin": "admin-password"} if users is None else users,
            domains=domains,
            two_factor_users=two_factor_users,
            lifetime=token_lifetime,
            refresh_lifetime=refresh_token_lifetime,
        )
        self.host = host
        self.auth_required = auth_required
        """Whether data requests need a valid bearer token."""
        self.on_list_page = on_list_page
        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order."""
        self.in_flight = 0
        """Requests being handled right now."""
        self.max_in_flight = 0
        """The most requests ever handled at once."""
        self._port = port
        self._max_body_bytes = max_body_bytes
        self._shutdown_timeout = shutdown_timeout
        self._scripts: collections.deque[ScriptedResponse] = collections.deque()
        self.faults = faults or Faults()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    @property
    def faults(self) -> Faults:
        """The fault configuration; assigning one restarts its random draws."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        self._rng = random.Random(faults.seed)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The live list of served message dicts."""
        return self._store.messages

    @property
    def token(self) -> str | None:
        """The static bearer token, or ``None`` if bearer checks are off."""
        return self._tokens.static_token

    @property
    def login_count(self) -> int:
        """Successful logins (token endpoint and sign-in)."""
        return self._tokens.login_count

    @property
    def refresh_count(self) -> int:
        """Successful token refreshes."""
        return self._tokens.refresh_count

    @property
    def revoked_tokens(self) -> set[str]:
        """Access tokens revoked or signed out."""
        return self._tokens.revoked_tokens

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: If the server is not started.
        """
        if self._runner is None:
            raise RuntimeError("the fake PortSIP server is not started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``, without ``/api``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The API root, :attr:`url` plus ``/api``."""
        return self.url + "/api"

    def script(self, responses: Iterable[ScriptedResponse]) -> None:
        """Queue answers for the next matching requests; see ScriptedResponse.

        Args:
            responses: Answers, consumed first in, first out.
        """
        self._scripts.extend(responses)

    @property
    def pending_scripts(self) -> int:
        """Scripted responses not yet consumed."""
        return len(self._scripts)

    def insert_messages(
        self, messages: Iterable[Mapping[str, Any]], at: int = 0
    ) -> None:
        """Insert copies of messages into the store.

        Args:
            messages: Message dicts to add.
            at: Index in :attr:`messages` where they go.
        """
        self.messages[at:at] = [dict(message) for message in messages]
        self._store.changed()

    def delete_messages(self, ids: Iterable[str]) -> int:
        """Delete messages by ID.

        Args:
            ids: IDs to delete; unknown ones are ignored.

        Returns:
            How many messages were deleted.
        """
        doomed = set(ids)
        before = len(self.messages)
        self.messages[:] = [m for m in self.messages if m.get("id") not in doomed]
        self._store.changed()
        return before - len(self.messages)

    def messages_changed(self) -> None:
        """Drop cached pages after editing message dicts in place.

        Inserting or removing list items is noticed without this call.
        """
        self._store.changed()

    def expire_tokens(self) -> None:
        """Expire every issued access token, so their next use gets a 401."""
        self._tokens.expire_all()

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            RuntimeError: If the server is already started.
        """
        if self._runner is not None:
            raise RuntimeError("the fake PortSIP server is already started")
        self._closing = asyncio.Event()
        runner = web.AppRunner(
            Handlers(self).make_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def close(self) -> None:
        """Stop serving; hung and trickling answers are cut off. Idempotent."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def serve_forever(self) -> None:
        """Serve, starting first if needed, until cancelled or closed; then close."""
        if self._runner is None:
            await self.start()
        try:
            await self._closing.wait()
        finally:
            await self.close()

    async def __aenter__(self) -> FakePortSIPServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.contextmanager
    def run_in_thread(self, timeout: float = 10.0) -> Iterator[FakePortSIPServer]:
        """Run the server on its own event loop in a thread, for synchronous code.

        Mutating the server from the calling thread is fine between requests;
        during one, the change may be seen half-way.

        Args:
            timeout: Seconds to wait for the server to start or stop.

        Yields:
            This server, started.
        """
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name="FakePortSIPServer", daemon=True
        )
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()
