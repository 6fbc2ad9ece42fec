"""The public client: one object per PBX, used inside ``async with``."""

from __future__ import annotations

import copy
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, overload

import aiohttp
import attrs
from yarl import URL

from ._attempts import HTTPSession
from ._auth import Auth, TokenAuth, TokenProviderAuth
from ._bulk import DEFAULT_GET_MANY_CONCURRENCY, fetch_many
from ._changes import DEFAULT_LOOKBACK, ChangeFeed, Checkpoint
from ._checks import check_bool, check_int, check_timeout
from ._converter import decode_json, structure_message, structure_page
from ._keywalk import FetchKeyPage, MessageScan
from ._limiter import Limiter
from ._login import LoginFlow, PasswordAuth
from ._logs import configure_logging_from_env
from ._models import ExternalMessage, Page
from ._pagination import (
    DEFAULT_CONCURRENCY,
    MAX_PAGE_SIZE,
    MessagePager,
    check_concurrency,
    check_list_args,
)
from ._response import APIResponse
from ._retry import RetryPolicy, check_retry
from ._transport import DEFAULT_MAX_RESPONSE_BYTES, Transport
from ._urls import api_root, collection_url, item_url, proxy_url
from ._watch import MessageWatch
from .errors import ClientStateError, ExternalMessagesError

__all__ = ["ExternalMessagesClient", "WithRawResponse"]

# Module-level names: inside the class, ``list`` is the method.
_Messages = list[ExternalMessage]
_Results = list[ExternalMessage | ExternalMessagesError]


def _optional_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")


def check_trace_configs(
    trace_configs: Sequence[aiohttp.TraceConfig] | None,
) -> tuple[aiohttp.TraceConfig, ...]:
    """Refuse ``trace_configs=`` that is not a sequence of ``aiohttp.TraceConfig``."""
    if trace_configs is None:
        return ()
    if not isinstance(trace_configs, (list, tuple)):
        raise TypeError(
            "trace_configs must be a list of aiohttp.TraceConfig, got "
            f"{type(trace_configs).__name__}"
        )
    for config in trace_configs:
        if not isinstance(config, aiohttp.TraceConfig):
            raise TypeError(
                "trace_configs must hold aiohttp.TraceConfig objects, got "
                f"{type(config).__name__}"
            )
    return tuple(trace_configs)


def _choose_auth(
    *,
    token: str | None,
    username: str | None,
    password: str | None,
    domain: str | None,
    login_flow: LoginFlow,
    token_provider: Callable[[], Awaitable[str]] | None,
    auth: Auth | None,
) -> Auth:
    if not isinstance(login_flow, str):
        raise TypeError(f"login_flow must be a str, got {type(login_flow).__name__}")
    if login_flow not in ("oauth", "json"):
        raise ValueError(f"login_flow must be 'oauth' or 'json', got {login_flow!r}")
    if (username is None) != (password is None):
        raise ValueError("username= and password= go together; pass both")
    if domain is not None and username is None:
        raise ValueError("domain= applies only with username= and password=")
    given = [
        name
        for name, value in (
            ("token", token),
            ("token_provider", token_provider),
            ("username/password", username),
            ("auth", auth),
        )
        if value is not None
    ]
    if len(given) != 1:
        shown = " and ".join(given) if given else "none"
        raise ValueError(
            "pass exactly one of token=, token_provider=, username= with "
            f"password=, or auth= (got {shown})"
        )
    if token is not None:
        return TokenAuth(token)
    if token_provider is not None:
        return TokenProviderAuth(token_provider)
    if username is not None and password is not None:
        return PasswordAuth(
            username=username, password=password, domain=domain, flow=login_flow
        )
    if not isinstance(auth, Auth):
        raise TypeError(f"auth must be an Auth, got {type(auth).__name__}")
    return auth


class ExternalMessagesClient:
    """An asyncio client for one PortSIP PBX's external messages (SMS, WhatsApp).

    Use it as an async context manager, or call :meth:`aclose` when done::

        async with ExternalMessagesClient("https://pbx.example.com:8887", token=t) as client:
            async for message in client.list():
                print(message.created_at, message.sender, message.content)

    No request follows a redirect, logins included: a ``3xx`` answer raises
    :class:`~external_messages_async.errors.APIStatusError` naming its
    ``Location``. Following one would send the token (or the password) to an
    address the caller never chose, possibly another host or plain HTTP; a
    PBX that moved is reached by passing its final address as ``base_url``.

    Args:
        base_url: The PBX address, such as ``https://pbx.example.com:8887``;
            ``/api`` is added when missing.
        token: A bearer token obtained elsewhere (PortSIP's console, a vault);
            a 401 with it is final.
        username: The account to log in as, with ``password``: the client
            logs in on first use, refreshes the token before it expires, and
            revokes it in :meth:`aclose` (see :class:`PasswordAuth`).
        password: The account's password; never shown or logged.
        domain: The tenant's SIP domain, for a tenant user.
        login_flow: ``"oauth"`` logs in through ``/api/login/oauth/token``
            (the default); ``"json"`` through ``/api/auth/sign_in``.
        token_provider: An async callable returning a token, awaited before
            every attempt (see :class:`TokenProviderAuth`).
        auth: Another authentication strategy (an :class:`Auth`). Exactly one
            of ``token``, ``token_provider``, ``username`` with ``password``,
            or ``auth`` is required; ``auth=Auth()`` sends no header.
        session: An :class:`aiohttp.ClientSession` to borrow; the client never
            closes it. Without one, the client makes its own on first use and
            closes it in :meth:`aclose`.
        timeout: Seconds one attempt may take, body included; finite and
            above 0.
        max_retries: Retries after a failed attempt; 0 disables them.
        retry: Full retry settings (a :class:`RetryPolicy`); overrides
            ``max_retries``.
        ssl: ``None`` verifies certificates (the default); ``False`` skips
            verification (for a self-signed PBX, logged as a warning); an
            :class:`ssl.SSLContext` trusts the PBX's own CA.
        user_scope: Target ``/user/external_messages`` (the signed-in user's
            own messages) instead of ``/external_messages``.
        max_response_bytes: The largest response body read; a larger one
            raises :class:`~external_messages_async.errors.ResponseDecodeError`.
        max_concurrency: The most requests in flight at once across every
            call of this client, or ``None`` for no cap.
        proxy: An HTTP proxy every request goes through, such as
            ``http://user:pass@proxy:3128``; ``https://`` targets are reached
            through ``CONNECT``. Its credentials are never shown.
        trust_env: Honour ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY``
            (and ``.netrc``) from the environment, for the session the client
            makes. Off by default, so the environment cannot reroute tokens.
        trace_configs: :class:`aiohttp.TraceConfig` hooks for the session the
            client makes (aiohttp's own request hooks; OpenTelemetry's aiohttp
            instrumentation provides one). A borrowed ``session=`` keeps its own.

    Raises:
        ValueError: ``base_url`` is not an absolute http(s) URL, an option
            is out of range, or not exactly one way to authenticate is given.
        TypeError: An option has the wrong type.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        domain: str | None = None,
        login_flow: LoginFlow = "oauth",
        token_provider: Callable[[], Awaitable[str]] | None = None,
        auth: Auth | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        ssl: ssl_module.SSLContext | bool | None = None,
        user_scope: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_concurrency: int | None = None,
        proxy: str | None = None,
        trust_env: bool = False,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
    ) -> None:
        configure_logging_from_env()
        api = api_root(base_url)
        auth = _choose_auth(
            token=token,
            username=username,
            password=password,
            domain=domain,
            login_flow=login_flow,
            token_provider=token_provider,
            auth=auth,
        )
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, got {type(session).__name__}"
            )
        check_timeout(timeout)
        if (
            ssl is not None
            and ssl is not False
            and not isinstance(ssl, ssl_module.SSLContext)
        ):
            raise TypeError("ssl must be None, False or an ssl.SSLContext")
        check_int("max_response_bytes", max_response_bytes, 1)
        check_int("max_retries", max_retries, 0)
        check_retry(retry)
        check_bool("user_scope", user_scope)
        retry = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self.user_scope = user_scope
        self._view_of: ExternalMessagesClient | None = None
        self._collection = collection_url(api, user_scope=self.user_scope)
        check_bool("trust_env", trust_env)
        transport = Transport(
            api,
            session=session,
            ssl=ssl,
            max_response_bytes=max_response_bytes,
            proxy=proxy_url(proxy),
            trust_env=trust_env,
            trace_configs=check_trace_configs(trace_configs),
        )
        self._http = HTTPSession(
            transport=transport,
            auth=auth,
            limiter=Limiter(max_concurrency),
            timeout=float(timeout),
            retry=retry,
        )

    @property
    def base_url(self) -> str:
        """The API root this client talks to, ending in ``/api``."""
        return str(self._http.api_url)

    @property
    def retry(self) -> RetryPolicy:
        """The retry settings."""
        return self._http.retry

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has run."""
        return self._http.closed

    def __repr__(self) -> str:
        scope = ", user_scope=True" if self.user_scope else ""
        return f"<ExternalMessagesClient {self.base_url!r}{scope}>"

    async def __aenter__(self) -> ExternalMessagesClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool the client made; calling it twice is harmless.

        A borrowed ``session=`` is left open. After this, every call raises
        :class:`~external_messages_async.errors.ClientStateError`. On a view
        made by :meth:`with_options` it does nothing: the client the view
        came from owns the pool.
        """
        if self._view_of is None:
            await self._http.aclose()

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> ExternalMessagesClient:
        """Return a view of this client with other per-call settings.

        The view shares this client's connection pool, authentication (one
        login, one token) and limiter: it opens no connection of its own.
        Closing the view (``aclose()`` or leaving ``async with``) does nothing;
        the client it came from owns the pool::

            patient = client.with_options(timeout=120, max_retries=8)
            page = await patient.get_page(top=100)

        Args:
            timeout: Seconds one attempt may take; unchanged when ``None``.
            max_retries: Retries after a failed attempt; unchanged when ``None``.
            retry: Full retry settings; overrides ``max_retries``.

        Returns:
            The view.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option is out of range.
        """
        if timeout is not None:
            check_timeout(timeout)
        check_int("max_retries", max_retries, 0, optional=True)
        check_retry(retry)
        if retry is None:
            retry = self.retry
            if max_retries is not None:
                retry = attrs.evolve(retry, max_retries=max_retries)
        view = copy.copy(self)
        view._http = attrs.evolve(
            self._http,
            timeout=self._http.timeout if timeout is None else float(timeout),
            retry=retry,
        )
        view._view_of = self
        return view

    @property
    def with_raw_response(self) -> WithRawResponse:
        """The calls that return an :class:`APIResponse` (status, headers, request id).

        ``await client.with_raw_response.get(message_id)`` and
        ``await client.with_raw_response.get_page(...)`` take the same
        arguments as :meth:`get` and :meth:`get_page`; ``.parse()`` on the
        result gives what those return.
        """
        return WithRawResponse(self)

    def _item_url(self, message_id: str) -> URL:
        if not isinstance(message_id, str):
            raise TypeError(
                f"message_id must be a str, got {type(message_id).__name__}"
            )
        if not message_id:
            raise ValueError("message_id must not be empty")
        return item_url(self._http.api_url, message_id, user_scope=self.user_scope)

    def _page_query(
        self,
        *,
        skip: int,
        top: int,
        filter: str | None,
        search: str | None,
        orderby: str | None,
    ) -> dict[str, str]:
        check_list_args(page_size=top, limit=None, skip=skip)
        params = self._query(filter=filter, search=search, orderby=orderby)
        params["skip"] = str(skip)
        params["top"] = str(top)
        return params

    async def _get_json(self, url: Any, params: dict[str, str] | None = None) -> Any:
        response = await self._http.request("GET", url, params=params)
        return decode_json(response.body)

    async def get(self, message_id: str) -> ExternalMessage:
        """Fetch one message by its id.

        Args:
            message_id: The opaque id; sent percent-encoded as one path segment.

        Returns:
            The message.

        Raises:
            TypeError: ``message_id`` is not a string.
            ValueError: ``message_id`` is empty.
            NotFoundError: No message has that id.
            APIStatusError: Another error answer.
            APIConnectionError: No answer, after the retries.
            ResponseDecodeError: The answer is not a message.
        """
        return structure_message(await self._get_json(self._item_url(message_id)))

    async def get_page(
        self,
        *,
        skip: int = 0,
        top: int = MAX_PAGE_SIZE,
        filter: str | None = None,
        search: str | None = None,
        orderby: str | None = None,
    ) -> Page[ExternalMessage]:
        """Fetch one page of messages.

        Args:
            skip: How many matching messages to skip (0 is the first).
            top: How many to return, 1 to 100.
            filter: An OData filter, such as ``msg_type eq 'SMS'``, sent verbatim.
            search: A free-text search, sent verbatim.
            orderby: A sort, such as ``created_at desc``, sent verbatim.

        Returns:
            The page: ``count`` is the total of matching messages.

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``skip`` or ``top`` is out of range.
            APIStatusError: An error answer (``BadRequestError`` for a bad filter).
            APIConnectionError: No answer, after the retries.
            ResponseDecodeError: The answer is not a page of messages.
        """
        params = self._page_query(
            skip=skip, top=top, filter=filter, search=search, orderby=orderby
        )
        return structure_page(await self._get_json(self._collection, params), skip=skip)

    async def count(
        self,
        *,
        filter: str | None = None,
        search: str | None = None,
    ) -> int:
        """Return how many messages match, with one small request.

        Args:
            filter: An OData filter, sent verbatim.
            search: A free-text search, sent verbatim.

        Returns:
            The server's ``count``.
        """
        page = await self.get_page(skip=0, top=1, filter=filter, search=search)
        return page.count

    def list(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        limit: int | None = None,
        skip: int = 0,
        filter: str | None = None,
        search: str | None = None,
        orderby: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> MessagePager:
        """Iterate over every matching message, across pages, lazily.

        ``async for message in client.list(): ...`` yields messages;
        ``async for page in client.list().pages(): ...`` yields pages.

        After the first page, up to ``concurrency`` pages are requested at
        once (a sliding window) and yielded in order; see
        :class:`MessagePager` for the rules, and use
        ``async with client.list() as pager:`` to stop its requests as soon
        as the block is left. The default of 8 hides most of a network's
        latency (measured in ``docs/benchmarks.md``) while holding at most
        about 8 pages; ``concurrency=1`` walks strictly one page at a time.

        Args:
            page_size: Messages per request, 1 to 100.
            limit: The most messages to yield, or ``None`` for all.
            skip: How many matching messages to skip first.
            filter: An OData filter, sent verbatim.
            search: A free-text search, sent verbatim.
            orderby: A sort, sent verbatim.
            concurrency: Pages in flight at once, ``>= 1``; still capped by
                the client's ``max_concurrency``.

        Returns:
            The pager (an async iterator with ``.pages()`` and ``.stats``).

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``page_size``, ``limit``, ``skip`` or ``concurrency``
                is out of range.
        """
        params = self._query(filter=filter, search=search, orderby=orderby)

        async def fetch(skip: int, top: int) -> Page[ExternalMessage]:
            query = {**params, "skip": str(skip), "top": str(top)}
            return structure_page(
                await self._get_json(self._collection, query), skip=skip
            )

        return MessagePager(
            fetch,
            page_size=page_size,
            limit=limit,
            skip=skip,
            concurrency=concurrency,
        )

    def _key_fetch(self, search: str | None) -> FetchKeyPage:
        _optional_str("search", search)
        base = {} if search is None else {"search": search}

        async def fetch(
            filter: str, orderby: str, top: int, skip: int
        ) -> Page[ExternalMessage]:
            query = {
                **base,
                "filter": filter,
                "orderby": orderby,
                "skip": str(skip),
                "top": str(top),
            }
            return structure_page(
                await self._get_json(self._collection, query), skip=skip
            )

        return fetch

    def scan(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        filter: str | None = None,
        search: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        concurrency: int = 1,
    ) -> MessageScan:
        """Read every message with ``since <= created_at < until`` exactly once, oldest first.

        Unlike :meth:`list`, which pages by offset, a scan walks by key: each
        request asks for the messages after the last one read (a filter on
        ``created_at`` and ``orderby=created_at asc``). So every message in
        range that exists for the whole scan is yielded exactly once,
        whatever is inserted or deleted meanwhile, even when many share one
        second. Messages without ``created_at`` cannot be scanned: they are
        counted in ``scan.stats.without_created_at``. See
        :class:`MessageScan` for the details::

            start = datetime(2024, 5, 1, tzinfo=timezone.utc)
            async with client.scan(since=start) as scan:
                async for message in scan:
                    ...

        Args:
            since: The first instant, inclusive, timezone-aware; ``None``
                starts at the oldest message.
            until: The end, exclusive, timezone-aware; ``None`` reads to the
                newest message, including ones created during the scan.
            filter: An OData filter ANDed with the key range, sent verbatim.
            search: A free-text search, sent verbatim.
            page_size: Messages per request, 1 to 100.
            concurrency: Time slices walked at once, ``>= 1``; slices of
                about 8 pages, balanced by count, yielded in order.

        Returns:
            The scan: an async iterator and async context manager with
            ``.pages()`` and ``.stats``.

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``since`` or ``until`` is naive, ``since`` is not
                before ``until``, or ``page_size`` or ``concurrency`` is out
                of range.
        """
        return MessageScan(
            self._key_fetch(search),
            since=since,
            until=until,
            filter=filter,
            page_size=page_size,
            concurrency=concurrency,
        )

    def changes(
        self,
        checkpoint: Checkpoint | None = None,
        *,
        since: datetime | None = None,
        lookback: timedelta = DEFAULT_LOOKBACK,
        page_size: int = MAX_PAGE_SIZE,
    ) -> ChangeFeed:
        """Read what changed since the last run: new messages and recent delivery changes.

        The feed yields every message created at or after the checkpoint's
        high-water mark minus ``lookback`` (on a first run: from ``since``,
        or everything), oldest first and at least once; upsert them by id.
        After a complete run, ``feed.checkpoint`` is the checkpoint to save
        for the next one; a run cut short leaves it ``None``, so the previous
        checkpoint stays valid. See :class:`ChangeFeed`::

            async with client.changes(Checkpoint.from_json(saved)) as feed:
                async for message in feed:
                    upsert(message)
            saved = feed.checkpoint.to_json()

        Args:
            checkpoint: The previous run's checkpoint, or ``None`` for a first run.
            since: Where a first run starts, timezone-aware; ``None`` reads
                everything. Ignored with a checkpoint.
            lookback: How far before the checkpoint to read again, to catch
                delivery changes and late messages; zero skips what was read.
            page_size: Messages per request, 1 to 100.

        Returns:
            The feed: an async iterator and async context manager with
            ``.pages()``, ``.checkpoint`` and ``.stats``.

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``since`` is naive, ``lookback`` is negative or
                ``page_size`` is out of range.
        """
        return ChangeFeed(
            self._key_fetch(None),
            checkpoint=checkpoint,
            since=since,
            lookback=lookback,
            page_size=page_size,
        )

    def watch(
        self,
        *,
        since: datetime | None = None,
        poll_interval: float = 5.0,
        updates: bool = False,
    ) -> MessageWatch:
        """Yield each new message once, as it appears, forever.

        The watch polls with the change-feed machinery: it waits longer while
        nothing comes (up to ``poll_interval``), drops ids it already yielded
        (remembering the last 10 000), logs and outlives connection errors,
        5xx and 429 answers, and raises on authentication and permission
        errors. ``break``, ``aclose()`` or cancelling the task stop it at
        once. See :class:`MessageWatch`::

            async with client.watch() as watch:
                async for message in watch:
                    if message.direction == "IN":
                        await reply_to(message)

        Args:
            since: Yield messages created from this instant on,
                timezone-aware; ``None`` yields only messages newer than the
                PBX's newest when the watch starts.
            poll_interval: The longest wait between polls, in seconds.
            updates: Also yield a recent message again when its ``delivery``
                or ``reason`` changed.

        Returns:
            The watch: an endless async iterator and async context manager.

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``since`` is naive or ``poll_interval`` is not a
                positive, finite number.
        """
        return MessageWatch(
            self._key_fetch(None),
            retry=self.retry,
            since=since,
            poll_interval=poll_interval,
            updates=updates,
        )

    @overload
    async def get_many(
        self,
        ids: Iterable[str],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[False] = ...,
    ) -> _Messages: ...

    @overload
    async def get_many(
        self,
        ids: Iterable[str],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[True],
    ) -> _Results: ...

    @overload
    async def get_many(
        self,
        ids: Iterable[str],
        *,
        concurrency: int = ...,
        return_exceptions: bool,
    ) -> _Messages | _Results: ...

    async def get_many(
        self,
        ids: Iterable[str],
        *,
        concurrency: int = DEFAULT_GET_MANY_CONCURRENCY,
        return_exceptions: bool = False,
    ) -> _Messages | _Results:
        """Fetch many messages by id, several requests at once.

        Every id is checked before the first request. Results come back in
        the order of ``ids``; an id listed twice is fetched once and fills
        both slots.

        Example::

            messages = await client.get_many(ids, concurrency=16)
            results = await client.get_many(ids, return_exceptions=True)
            missing = [r for r in results if isinstance(r, NotFoundError)]

        Args:
            ids: The message ids (any iterable of strings, not one string).
            concurrency: Requests in flight at once, ``>= 1``; still capped by
                the client's ``max_concurrency``.
            return_exceptions: Put each id's error (such as
                :class:`~external_messages_async.errors.NotFoundError`) in its
                slot instead of raising.

        Returns:
            One message per id, in order; with ``return_exceptions=True`` a
            slot may hold the id's exception instead.

        Raises:
            TypeError: ``ids`` is a string or holds a non-string, or
                ``concurrency`` is not an int.
            ValueError: An id is empty, or ``concurrency`` is below 1.
            ClientStateError: The client is closed (even with
                ``return_exceptions=True``).
            ExternalMessagesError: Without ``return_exceptions``, the first
                failure (``NotFoundError``, ``APIStatusError``,
                ``APIConnectionError``...); the other requests are cancelled
                first.
        """
        check_concurrency(concurrency)
        check_bool("return_exceptions", return_exceptions)
        if self.closed:
            # Not one ClientStateError per id: the client as a whole is closed.
            raise ClientStateError("the client is closed; create a new one")
        return await fetch_many(
            self.get,
            ids,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
        )

    @staticmethod
    def _query(
        *, filter: str | None, search: str | None, orderby: str | None
    ) -> dict[str, str]:
        params = {}
        for name, value in (
            ("filter", filter),
            ("search", search),
            ("orderby", orderby),
        ):
            _optional_str(name, value)
            if value is not None:
                params[name] = value
        return params


class WithRawResponse:
    """The calls of a client that return an :class:`APIResponse`.

    Reached through :attr:`ExternalMessagesClient.with_raw_response`.

    Args:
        client: The client whose pool, auth, limiter and retries are used.
    """

    def __init__(self, client: ExternalMessagesClient) -> None:
        self._client = client

    async def get(self, message_id: str) -> APIResponse[ExternalMessage]:
        """:meth:`ExternalMessagesClient.get`, returning the answer's metadata too.

        Args:
            message_id: The opaque id of the message.

        Returns:
            The response, whose ``.parse()`` is the :class:`ExternalMessage`.
        """
        client = self._client
        response = await client._http.request("GET", client._item_url(message_id))
        return APIResponse.of(response, _parse_message)

    async def get_page(
        self,
        *,
        skip: int = 0,
        top: int = MAX_PAGE_SIZE,
        filter: str | None = None,
        search: str | None = None,
        orderby: str | None = None,
    ) -> APIResponse[Page[ExternalMessage]]:
        """Fetch one page of messages, with the answer's metadata.

        Args:
            skip: As for :meth:`ExternalMessagesClient.get_page`.
            top: As for :meth:`ExternalMessagesClient.get_page`.
            filter: As for :meth:`ExternalMessagesClient.get_page`.
            search: As for :meth:`ExternalMessagesClient.get_page`.
            orderby: As for :meth:`ExternalMessagesClient.get_page`.

        Returns:
            The response; ``.parse()`` gives the :class:`Page`.

        Raises:
            ExternalMessagesError: As for :meth:`ExternalMessagesClient.get_page`.
        """
        client = self._client
        params = client._page_query(
            skip=skip, top=top, filter=filter, search=search, orderby=orderby
        )
        response = await client._http.request("GET", client._collection, params=params)
        return APIResponse.of(
            response, lambda body: structure_page(decode_json(body), skip=skip)
        )


def _parse_message(body: bytes) -> ExternalMessage:
    return structure_message(decode_json(body))
