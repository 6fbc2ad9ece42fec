"""The async session layer: one aiohttp pool, auth headers, retries.

Everything that decides (retry or not, how long to wait, which exception) lives
in pure modules; this one only moves bytes and calls them.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from ._auth import Auth, RawResponse, check_header_value
from ._limiter import Limiter
from ._retry import RetryPolicy, decide_retry, parse_retry_after, rate_limit_pause
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientStateError,
    ResponseDecodeError,
    make_status_error,
)

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "HTTPSession", "user_agent"]

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


class HTTPSession:
    """Sends requests to one PBX: pool ownership, auth, retries, size cap.

    Args:
        api_url: The API root, ending in ``/api``.
        auth: Where the ``Authorization`` header comes from.
        session: A borrowed :class:`aiohttp.ClientSession`; never closed here.
        timeout: Seconds one attempt may take, body included.
        retry: The retry settings.
        ssl: Passed to aiohttp: ``None`` for default verification, ``False`` to
            skip it, or an :class:`ssl.SSLContext`.
        max_response_bytes: The largest body read before refusing the answer.
        limiter: The client-wide cap on attempts in flight.
    """

    def __init__(
        self,
        api_url: URL,
        *,
        auth: Auth,
        session: aiohttp.ClientSession | None,
        timeout: float,
        retry: RetryPolicy,
        ssl: ssl_module.SSLContext | bool | None,
        max_response_bytes: int,
        limiter: Limiter,
    ) -> None:
        self.api_url = api_url
        self.auth = auth
        self.retry = retry
        self.limiter = limiter
        self.max_response_bytes = max_response_bytes
        self._ssl: ssl_module.SSLContext | bool = True if ssl is None else ssl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
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
                connector=aiohttp.TCPConnector(ssl=self._ssl)
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
        params: Mapping[str, str] | None = None,
        authorization: str | None = None,
        data: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> RawResponse:
        """Make one attempt and read the whole answer, whatever its status.

        Args:
            method: The HTTP method.
            url: The absolute URL (already encoded).
            params: Query parameters.
            authorization: The ``Authorization`` header value, if any.
            data: A form-encoded body.
            json: A JSON body.

        Returns:
            The response.

        Raises:
            APIConnectionError: No HTTP answer came back.
            APITimeoutError: The attempt took longer than ``timeout``.
            ResponseDecodeError: The body is larger than ``max_response_bytes``.
            ClientStateError: The client is closed or in another event loop.
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
                timeout=self._timeout,
                ssl=self._ssl,
                # The token must never follow a redirect; see docs on redirects.
                allow_redirects=False,
                # Every status is read here, even through a borrowed session
                # made with raise_for_status=True.
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
                f"{method} {url.raw_path} timed out after {self._timeout.total:g}s",
                method=method,
                path=url.raw_path,
            ) from None
        except aiohttp.ClientError as exc:
            raise APIConnectionError(
                f"{method} {url.raw_path} failed: {_describe(exc)}",
                method=method,
                path=url.raw_path,
            ) from exc

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
        chunks = []
        size = 0
        if length is None or length <= cap or not 200 <= response.status < 300:
            while chunk := await response.content.read(_READ_CHUNK):
                size += len(chunk)
                chunks.append(chunk)
                if size > cap:
                    break
            else:
                return b"".join(chunks), False
        response.close()
        if not 200 <= response.status < 300:
            return b"".join(chunks)[:cap], True
        raise ResponseDecodeError(
            f"{method} {url.raw_path} -> {response.status}: response body exceeds the "
            f"{cap}-byte cap (max_response_bytes)"
        )

    async def post(
        self,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> RawResponse:
        """Send one POST under the API root, for authentication strategies.

        Args:
            path: The path under the API root, such as ``login/oauth/token``.
            form: A form-encoded body.
            json: A JSON body.
            token: A bearer token to send, if any.

        Returns:
            The response, whatever its status.
        """
        return await self.send(
            "POST",
            self.api_url.joinpath(path),
            data=form,
            json=json,
            authorization=f"Bearer {token}" if token is not None else None,
        )

    async def request(
        self, method: str, url: URL, *, params: Mapping[str, str] | None = None
    ) -> RawResponse:
        """Send a request with auth and retries; return a 2xx answer.

        Args:
            method: The HTTP method (only safe, idempotent ones are retried).
            url: The absolute URL.
            params: Query parameters.

        Returns:
            The successful response.

        Raises:
            APIStatusError: A final non-2xx answer (a subclass per status).
            APIConnectionError: The last attempt got no answer.
            ResponseDecodeError: The body is larger than the cap.
        """
        retries = 0
        replayed = False
        while True:
            authorization = await self.auth.authorization(self)
            try:
                async with self.limiter.slot() as epoch:
                    response = await self.send(
                        method, url, params=params, authorization=authorization
                    )
                    if response.status == 429:
                        # Noted while the place is held, so that no waiter
                        # starts between this answer and the pause.
                        retry_after = parse_retry_after(
                            response.headers.get("Retry-After")
                        )
                        self.limiter.on_rate_limited(
                            rate_limit_pause(retry_after, self.retry), epoch=epoch
                        )
            except APIConnectionError as exc:
                decision = decide_retry(
                    retries_done=retries, policy=self.retry, status=None
                )
                if not decision.retry:
                    raise
                logger.debug(
                    "retrying %s %s in %.3fs (retry %d of %d): %s",
                    method, url.raw_path, decision.delay, retries + 1,
                    self.retry.max_retries, exc,
                )  # fmt: skip
                await asyncio.sleep(decision.delay)
                retries += 1
                continue
            status = response.status
            if 200 <= status < 300:
                self.limiter.on_success()
                return response
            if status == 401 and self.auth.manages_token and not replayed:
                replayed = True
                if await self.auth.on_unauthorized(self, authorization):
                    logger.debug(
                        "replaying %s %s after a token refresh", method, url.raw_path
                    )
                    continue
            decision = decide_retry(
                retries_done=retries,
                policy=self.retry,
                status=status,
                headers=response.headers,
            )
            if not decision.retry:
                raise self._status_error(
                    method, url, response, decision.retry_after, authorization
                )
            logger.debug(
                "retrying %s %s in %.3fs (retry %d of %d): %s",
                method, url.raw_path, decision.delay, retries + 1,
                self.retry.max_retries, decision.reason,
            )  # fmt: skip
            await asyncio.sleep(decision.delay)
            retries += 1

    @staticmethod
    def _status_error(
        method: str,
        url: URL,
        response: RawResponse,
        retry_after: float | None,
        authorization: str | None,
    ) -> APIStatusError:
        # A server that echoes the token back must not put it in the error.
        credential = (authorization or "").partition(" ")[2] or authorization
        error = make_status_error(
            method=method,
            path=url.raw_path,
            status=response.status,
            headers=response.headers,
            body=response.body,
            retry_after=retry_after,
            secrets=(credential,) if credential else (),
            truncated=response.truncated,
        )
        if 300 <= response.status < 400:
            location = response.headers.get("Location", "")
            error.args = (
                f"{error.args[0]}: the server redirects to {location!r}; API calls "
                "do not follow redirects, so use the final URL as base_url",
            )
        return error

    async def aclose(self) -> None:
        """Close the pool if the client made it; safe to call twice.

        Raises:
            ClientStateError: Called from another event loop than the one that
                opened the pool, while that one still runs; close it there.
        """
        if self._closed:
            return
        loop = self._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            if not loop.is_closed():
                # Closing another loop's sockets from here fails half-way and
                # would leave the pool open for good.
                raise ClientStateError(
                    "the client was opened in another event loop; close it there"
                )
            # Its loop is gone, and its connections with it: aiohttp only
            # marks the pool closed, and the token cannot be revoked anymore.
            self._closed = True
            session, self._session = self._session, None
            if session is not None and self._borrowed is None:
                await session.close()
            return
        try:
            if self._session is not None and self._loop is not None:
                try:
                    await self.auth.aclose(self)
                except Exception as exc:  # best effort on the way out
                    logger.debug(
                        "closing the authentication failed: %s", type(exc).__name__
                    )
        finally:
            self._closed = True
            if self._session is not None and self._borrowed is None:
                await self._session.close()
            self._session = None


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
