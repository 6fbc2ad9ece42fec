"""The transport: one aiohttp pool, one attempt at a time. I/O only.

It owns (or borrows) the connection pool, checks the event loop, sends one
request and reads its body up to the size cap, and closes the pool. It makes
no decision: retrying, authentication and the limiter live in
:mod:`._attempts`, and what an answer means in the pure modules.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import ssl as ssl_module
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from yarl import URL

from ._auth import RawResponse, check_header_value
from ._version import __version__
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    ResponseDecodeError,
)

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Transport", "proxy_secrets", "user_agent"]

logger = logging.getLogger("external_messages_async")

#: The largest response body the client reads before giving up (8 MiB): a page
#: of 100 messages is well under 200 KiB.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024

_READ_CHUNK = 64 * 1024


def user_agent() -> str:
    """Return the ``User-Agent`` the client sends.

    Returns:
        ``external-messages-async/<version> aiohttp/<version> python/<version>``.
    """
    return (
        f"external-messages-async/{__version__} aiohttp/{aiohttp.__version__} "
        f"python/{platform.python_version()}"
    )


class Transport:
    """Sends single attempts to one PBX: pool ownership, loop checks, size cap.

    Args:
        api_url: The API root, ending in ``/api``.
        session: A borrowed :class:`aiohttp.ClientSession`; never closed here.
        ssl: Passed to aiohttp: ``None`` for default verification, ``False`` to
            skip it, or an :class:`ssl.SSLContext`.
        max_response_bytes: The largest body read before refusing the answer.
        proxy: A proxy URL every request goes through, or ``None``.
        trust_env: For the pool the transport makes: honour ``HTTP(S)_PROXY``,
            ``NO_PROXY`` and ``.netrc`` from the environment.
        trace_configs: aiohttp trace hooks for the pool the transport makes.
    """

    def __init__(
        self,
        api_url: URL,
        *,
        session: aiohttp.ClientSession | None,
        ssl: ssl_module.SSLContext | bool | None,
        max_response_bytes: int,
        proxy: URL | None = None,
        trust_env: bool = False,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self.api_url = api_url
        self.max_response_bytes = max_response_bytes
        self.proxy = proxy
        self._trust_env = trust_env
        self._proxy_secrets = proxy_secrets(proxy, trust_env=trust_env)
        self._trace_configs = list(trace_configs)
        self._ssl: ssl_module.SSLContext | bool = True if ssl is None else ssl
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = session
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._headers = {"User-Agent": user_agent(), "Accept": "application/json"}
        if ssl is False:
            logger.warning(
                "TLS certificate verification is disabled for %s; use it only "
                "for a PBX you trust on a network you trust",
                api_url.origin(),
            )

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has run."""
        return self._closed

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The pool in use: the borrowed one, the one made on first use, or ``None``."""
        return self._session

    def _pool(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientStateError("the client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ClientStateError(
                "the client was opened in another event loop; create one client "
                "per event loop"
            )
        if self._borrowed is not None and self._borrowed.closed:
            raise ClientStateError(
                "the borrowed aiohttp session (session=) is closed; keep it open "
                "while the client is in use"
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                trust_env=self._trust_env,
                trace_configs=self._trace_configs or None,
            )
            # aiohttp silently resends an idempotent request once when the
            # connection drops; here the retry policy (counted, logged, backed
            # off) is the only one, so that max_retries=0 means one attempt.
            # (The attribute is private; a future aiohttp may drop it.)
            if hasattr(self._session, "_retry_connection"):  # pragma: no branch
                self._session._retry_connection = False
        return self._session

    async def send(
        self,
        method: str,
        url: URL,
        *,
        timeout: float,
        params: Mapping[str, str] | None = None,
        authorization: str | None = None,
        data: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> RawResponse:
        """Make one attempt and read the whole answer, whatever its status.

        Args:
            method: The HTTP method.
            url: The absolute URL (already encoded).
            timeout: Seconds the attempt may take, body included.
            params: Query parameters.
            authorization: The ``Authorization`` header value, if any.
            data: A form-encoded body.
            json: A JSON body.

        Returns:
            The response.

        Raises:
            APIConnectionError: No HTTP answer came back.
            APITimeoutError: The attempt took longer than ``timeout``.
            ResponseDecodeError: A 2xx body is larger than ``max_response_bytes``.
            ClientStateError: The client is closed or in another event loop.
            ValueError: ``authorization`` is not a valid header value.
        """
        pool = self._pool()
        headers = dict(self._headers)
        if authorization is not None:
            check_header_value(authorization)
            headers["Authorization"] = authorization
        body = orjson.dumps(json) if json is not None else None
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with pool.request(
                method,
                url,
                params=params,
                headers=headers,
                data=body if body is not None else data,
                timeout=aiohttp.ClientTimeout(total=timeout),
                ssl=self._ssl,
                proxy=self.proxy,
                # The token must never follow a redirect; see docs on redirects.
                allow_redirects=False,
                # Every status is read by the caller, even through a borrowed
                # session made with raise_for_status=True.
                raise_for_status=False,
            ) as response:
                content, truncated = await self._read_body(response, method, url)
                return RawResponse(
                    status=response.status,
                    # Already a read-only copy, valid after the release.
                    headers=response.headers,
                    body=content,
                    truncated=truncated,
                    path=url.raw_path,
                )
        except asyncio.TimeoutError:
            raise APITimeoutError(
                f"{method} {url.raw_path} timed out after {timeout:g}s",
                method=method,
                path=url.raw_path,
            ) from None
        except aiohttp.ClientError as exc:
            description = _describe(exc)
            for secret in self._proxy_secrets:
                description = description.replace(secret, "***")
            # aiohttp's own exception may quote the proxy URL with its
            # credentials, so it is not kept as the cause when there are any.
            raise APIConnectionError(
                f"{method} {url.raw_path} failed: {description}",
                method=method,
                path=url.raw_path,
            ) from (None if self._proxy_secrets else exc)

    async def _read_body(
        self, response: aiohttp.ClientResponse, method: str, url: URL
    ) -> tuple[bytes, bool]:
        """Read the body up to the cap; return it and whether it was cut.

        A 2xx body past the cap is refused. An error body past the cap is cut
        at the cap instead: its status decides what happens (a retry, an
        error), and the start of the body is enough to say why.
        """
        cap = self.max_response_bytes
        length = response.content_length
        # aiohttp unpacks gzip and deflate bodies itself: Content-Length then
        # counts packed bytes, and only the unpacked ones read below count.
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        packed = encoding not in ("", "identity")
        if length is not None and length <= cap and not packed:
            # The parser stops at Content-Length, so one read is bounded.
            return await response.read(), False
        success = 200 <= response.status < 300
        chunks = []
        size = 0
        if length is None or length <= cap or not success:
            while chunk := await response.content.read(_READ_CHUNK):
                size += len(chunk)
                chunks.append(chunk)
                if size > cap:
                    break
            else:
                return b"".join(chunks), False
        response.close()
        if not success:
            return b"".join(chunks)[:cap], True
        raise ResponseDecodeError(
            f"{method} {url.raw_path} -> {response.status}: response body exceeds the "
            f"{cap}-byte cap (max_response_bytes)"
        )

    def open_in_this_loop(self) -> bool:
        """Tell whether a last request (such as a token revocation) can go out.

        Returns:
            ``True`` when the pool is open and belongs to the running loop;
            ``False`` when nothing was sent yet, or the pool's loop is gone.

        Raises:
            ClientStateError: The pool belongs to another event loop that
                still runs; close the client there.
        """
        loop = self._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            if not loop.is_closed():
                # Closing another loop's sockets from here fails half-way and
                # would leave the pool open for good.
                raise ClientStateError(
                    "the client was opened in another event loop; close it there"
                )
            # Its loop is gone, and its connections with it.
            return False
        return self._session is not None and loop is not None

    async def aclose(self) -> None:
        """Close the pool if the transport made it; mark it closed. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._borrowed is None:
            await session.close()


def proxy_secrets(proxy: URL | None, *, trust_env: bool) -> tuple[str, ...]:
    """List the proxy credentials no error or log line may show.

    Args:
        proxy: The ``proxy=`` URL, if any.
        trust_env: Whether proxies from ``HTTP(S)_PROXY`` are used too.

    Returns:
        User names and passwords, as written and decoded, longest first.
    """
    urls = [proxy] if proxy is not None else []
    if trust_env:
        urls += [URL(value) for value in urllib.request.getproxies().values()]
    secrets = set()
    for url in urls:
        for value in (url.raw_user, url.user, url.raw_password, url.password):
            if value:
                secrets.add(value)
    return tuple(sorted(secrets, key=len, reverse=True))


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
