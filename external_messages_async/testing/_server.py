"""The fake PortSIP PBX: its public face, its data and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
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

import attrs
from aiohttp import web

from ._auth import TokenStore
from ._clock import ServerClock
from ._data import MessageMaker, format_rfc3339, generate_messages, message_fields
from ._faults import Faults, ScriptedResponse
from ._handlers import Handlers
from ._state import ServerState, check_ignore_query, check_max_top
from ._store import MAX_TOP, MessageStore
from ._wire import RecordedRequest

ListPageHook = Callable[["FakePortSIPServer", int, int], Awaitable[None] | None]
"""``hook(server, skip, top)``, run before a list page is served; may be async."""

RequestHook = Callable[
    ["FakePortSIPServer", RecordedRequest],
    Awaitable[ScriptedResponse | None] | ScriptedResponse | None,
]
"""``hook(server, request)``, run for each request; may be async.

Returns a :class:`ScriptedResponse` to answer with, or ``None`` for the normal
answer (faults included).
"""


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
    order in :attr:`messages`. ``created_at`` is compared and sorted as an
    instant, whatever its offset or fraction: ``created_at ge
    '2024-07-01T02:00:00+02:00'`` matches ``"2024-07-01T00:00:00.5Z"``.

    Generated messages are made when the server starts, in a worker thread, so
    that a large data set does not block the event loop; reading
    :attr:`messages` (or adding messages) before then makes them at once.

    Args:
        messages: How many messages to generate with :func:`generate_messages`,
            or the message dicts to serve (copied).
        seed: Seed for generated messages, and for those :meth:`add_message`
            makes.
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
        token_clock: Monotonic seconds that token lifetimes are measured
            with; pass a fake to expire tokens without waiting. It is not
            :attr:`clock`, which dates messages.
        faults: Random faults injected into data requests.
        latency: Seconds to wait before answering each data request; the same
            as ``faults=Faults(latency=...)``, and it overrides that one.
        clock: The server's clock, which stamps messages made by
            :meth:`add_message`; by default a new :class:`ServerClock` at the
            current time.
        ignore_query: List options the server silently ignores, among
            ``"skip"``, ``"top"``, ``"filter"``, ``"search"`` and ``"orderby"``,
            like a server that does not support them.
        max_top: The most items served per page, 1 to 100 (PortSIP's maximum).
            A request may still ask for up to 100; a smaller cap makes the
            server return fewer, as some servers do.
        on_list_page: Hook run before each list page, e.g. to insert messages
            while a client pages.
        on_request: Hook run for every request (data, login and the rest)
            that no queued script took, before faults are drawn. It may
            await, e.g. an :class:`asyncio.Event` to hold a request until the
            test releases it, and may return a :class:`ScriptedResponse` to
            answer with, computed from the request.
        max_body_bytes: Largest request body accepted.
        preserialize: Cache filtered views and encoded messages (see
            :meth:`messages_changed`).
        shutdown_timeout: Seconds :meth:`close` waits for busy handlers.

    Raises:
        TypeError: If ``max_top`` is not an int.
        ValueError: If ``messages`` is negative, ``ignore_query`` names an
            unknown option or ``max_top`` is out of range.
    """

    def __init__(
        self,
        messages: int | Sequence[Mapping[str, Any]] = 100,
        *,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = "demo-token",
        auth_required: bool = True,
        users: Mapping[str, str] | None = None,
        domains: Collection[str] | None = None,
        two_factor_users: Collection[str] = (),
        token_lifetime: float = 3600.0,
        refresh_token_lifetime: float = 86400.0,
        token_clock: Callable[[], float] = time.monotonic,
        faults: Faults | None = None,
        latency: float | None = None,
        clock: ServerClock | None = None,
        ignore_query: Iterable[str] = (),
        max_top: int = MAX_TOP,
        on_list_page: ListPageHook | None = None,
        on_request: RequestHook | None = None,
        max_body_bytes: int = 1 << 20,
        preserialize: bool = True,
        shutdown_timeout: float = 0.25,
    ) -> None:
        if isinstance(messages, int):
            if messages < 0:
                raise ValueError(f"messages must be >= 0, got {messages}")
            data: list[dict[str, Any]] = []
            self._to_generate: int | None = messages
        else:
            data = [dict(m) for m in messages]
            self._to_generate = None
        faults = faults or Faults()
        if latency is not None:
            faults = attrs.evolve(faults, latency=latency)
        self._seed = seed
        self._preserialize = preserialize
        self._maker = MessageMaker(seed, first_index=self._to_generate or 0)
        self._state = ServerState(
            store=MessageStore(data, preserialize=preserialize),
            tokens=TokenStore(
                static_token=token,
                users={"admin": "admin-password"} if users is None else users,
                domains=domains,
                two_factor_users=two_factor_users,
                lifetime=token_lifetime,
                refresh_lifetime=refresh_token_lifetime,
                clock=token_clock,
            ),
            clock=ServerClock() if clock is None else clock,
            max_body_bytes=max_body_bytes,
            auth_required=auth_required,
            ignore_query=check_ignore_query(ignore_query),
            max_top=check_max_top(max_top),
            faults=faults,
        )
        self.host = host
        self.on_list_page = on_list_page
        self.on_request = on_request
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    def _fill(self, data: list[dict[str, Any]]) -> None:
        if self._to_generate is not None:
            self._to_generate = None
            self._state.store = MessageStore(data, preserialize=self._preserialize)

    def _store(self) -> MessageStore:
        if self._to_generate is not None:
            self._fill(generate_messages(self._to_generate, self._seed))
        return self._state.store

    @property
    def faults(self) -> Faults:
        """The fault configuration; assigning one restarts its random draws."""
        return self._state.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._state.use_faults(faults)

    @property
    def on_list_page(self) -> ListPageHook | None:
        """Hook run before each list page is served, or ``None``."""
        return self._on_list_page

    @on_list_page.setter
    def on_list_page(self, hook: ListPageHook | None) -> None:
        self._on_list_page = hook
        self._state.before_list_page = (
            None if hook is None else functools.partial(hook, self)
        )

    @property
    def on_request(self) -> RequestHook | None:
        """Hook run for each request no script took, or ``None``."""
        return self._on_request

    @on_request.setter
    def on_request(self, hook: RequestHook | None) -> None:
        self._on_request = hook
        self._state.on_request = None if hook is None else functools.partial(hook, self)

    @property
    def auth_required(self) -> bool:
        """Whether data requests need a valid bearer token."""
        return self._state.auth_required

    @auth_required.setter
    def auth_required(self, required: bool) -> None:
        self._state.auth_required = required

    @property
    def ignore_query(self) -> set[str]:
        """List options the server silently ignores; change the set at any time.

        Assigning a new collection checks its names (``ValueError`` for an
        unknown one).
        """
        return self._state.ignore_query

    @ignore_query.setter
    def ignore_query(self, names: Iterable[str]) -> None:
        self._state.ignore_query = check_ignore_query(names)

    @property
    def max_top(self) -> int:
        """The most items served per page (1 to 100); may be assigned."""
        return self._state.max_top

    @max_top.setter
    def max_top(self, value: int) -> None:
        self._state.max_top = check_max_top(value)

    @property
    def clock(self) -> ServerClock:
        """The server's clock, which stamps the messages :meth:`add_message` makes."""
        return self._state.clock

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order."""
        return self._state.requests

    @requests.setter
    def requests(self, requests: list[RecordedRequest]) -> None:
        self._state.requests = requests

    @property
    def in_flight(self) -> int:
        """Requests being handled right now."""
        return self._state.in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests ever handled at once."""
        return self._state.max_in_flight

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The live list of served message dicts."""
        return self._store().messages

    @property
    def token(self) -> str | None:
        """The static bearer token, or ``None`` if bearer checks are off."""
        return self._state.tokens.static_token

    @property
    def login_count(self) -> int:
        """Successful logins (token endpoint and sign-in)."""
        return self._state.tokens.login_count

    @property
    def refresh_count(self) -> int:
        """Successful token refreshes."""
        return self._state.tokens.refresh_count

    @property
    def revoked_tokens(self) -> set[str]:
        """Access tokens revoked or signed out."""
        return self._state.tokens.revoked_tokens

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
        self._state.scripts.extend(responses)

    @property
    def pending_scripts(self) -> int:
        """Scripted responses not yet consumed."""
        return len(self._state.scripts)

    def insert_messages(
        self, messages: Iterable[Mapping[str, Any]], at: int = 0
    ) -> None:
        """Insert copies of messages into the store.

        Args:
            messages: Message dicts to add.
            at: Index in :attr:`messages` where they go.
        """
        store = self._store()
        store.messages[at:at] = [dict(message) for message in messages]
        store.changed()

    def add_message(self, **fields: Any) -> dict[str, Any]:
        """Add one realistic message, as if it had just arrived at the PBX.

        The message has all 17 fields, drawn like :func:`generate_messages`'
        (same channels, reproducible from ``seed``), with an ID no stored
        message has, and ``created_at`` at :attr:`clock`'s time in whole
        seconds (``"2024-07-01T12:00:00Z"``). It is appended to
        :attr:`messages`, so among messages created in the same second it
        comes last in every order, as a new row in a table would.

        Args:
            **fields: Field values that replace the drawn ones, e.g.
                ``direction="IN"`` or ``created_at=datetime(...)`` (aware; a
                string is stored as it is).

        Returns:
            A copy of the stored message.

        Raises:
            TypeError: If a field name is not one of :data:`MESSAGE_FIELDS`.
            ValueError: If ``id`` is already taken or ``created_at`` is naive.

        Example:
            >>> server = FakePortSIPServer(messages=0)
            >>> first = server.add_message(delivery="SENT")
            >>> server.update_message(first["id"], delivery="DELIVERED")["delivery"]
            'DELIVERED'
        """
        return self.add_messages(1, **fields)[0]

    def add_messages(self, n: int, **fields: Any) -> list[dict[str, Any]]:
        """Add ``n`` realistic messages, like :meth:`add_message`.

        Args:
            n: How many.
            **fields: Field values for all of them; ``created_at=`` gives ``n``
                messages sharing one instant. ``id`` is only allowed for one.

        Returns:
            Copies of the stored messages, in the order they were appended.

        Raises:
            TypeError: If ``n`` is not an int or a field name is unknown.
            ValueError: If ``n`` is negative, ``id`` is given for more than one
                message or is taken, or ``created_at`` is naive.
        """
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        overrides = message_fields(fields)
        store = self._store()
        taken = {message.get("id") for message in store.messages}
        if "id" in overrides and (n > 1 or overrides["id"] in taken):
            raise ValueError(
                f"id {overrides['id']!r} is taken or given for {n} messages"
            )
        created_at = format_rfc3339(self.clock.now().replace(microsecond=0))
        added: list[dict[str, Any]] = []
        for _ in range(n):
            message = self._maker.make(taken)
            taken.add(message["id"])
            message["created_at"] = created_at
            message.update(overrides)
            added.append(message)
        store.messages.extend(added)
        store.changed()
        return [dict(message) for message in added]

    def update_message(self, message_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of a stored message, e.g. its delivery state.

        Args:
            message_id: The ID of the message (the first one, if several share it).
            **fields: New values, e.g. ``delivery="ERR", reason="expired"``.

        Returns:
            A copy of the changed message.

        Raises:
            KeyError: If no message has that ID.
            TypeError: If a field name is unknown.
            ValueError: If ``fields`` holds ``id`` (IDs never change) or a
                naive ``created_at``.
        """
        changes = message_fields(fields)
        if "id" in changes:
            raise ValueError("a message's id cannot be changed")
        store = self._store()
        message = next((m for m in store.messages if m.get("id") == message_id), None)
        if message is None:
            raise KeyError(message_id)
        message.update(changes)
        store.changed()
        return dict(message)

    def delete_messages(self, ids: Iterable[str]) -> int:
        """Delete messages by ID.

        Args:
            ids: IDs to delete; unknown ones are ignored.

        Returns:
            How many messages were deleted.
        """
        doomed = set(ids)
        store = self._store()
        before = len(store.messages)
        store.messages[:] = [m for m in store.messages if m.get("id") not in doomed]
        store.changed()
        return before - len(store.messages)

    def messages_changed(self) -> None:
        """Drop cached pages after editing message dicts in place.

        Inserting or removing list items is noticed without this call.
        """
        self._store().changed()

    def expire_tokens(self) -> None:
        """Expire every issued access token, so their next use gets a 401."""
        self._state.tokens.expire_all()

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            RuntimeError: If the server is already started.
        """
        if self._runner is not None:
            raise RuntimeError("the fake PortSIP server is already started")
        if self._to_generate is not None:
            # Off the loop: 20,000 messages take over a second to make.
            self._fill(
                await asyncio.to_thread(
                    generate_messages, self._to_generate, self._seed
                )
            )
        self._state.closing = asyncio.Event()
        runner = web.AppRunner(
            Handlers(self._state).make_app(),
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
        self._state.closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def serve_forever(self) -> None:
        """Serve, starting first if needed, until cancelled or closed; then close."""
        if self._runner is None:
            await self.start()
        try:
            await self._state.closing.wait()
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
