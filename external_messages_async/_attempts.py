"""The attempt loop: authentication, the limiter and retries around each request.

:class:`HTTPSession` turns one logical call into attempts: it asks the
:class:`~external_messages_async.Auth` for a header, holds a place in the
client-wide :class:`~._limiter.Limiter`, sends through the
:class:`~._transport.Transport`, replays once after a token renewal, and
retries what :func:`~._retry.decide_retry` says to retry. Every decision is a
pure function of another module; this one only sequences them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs
from yarl import URL

from ._auth import Auth, RawResponse
from ._limiter import Limiter
from ._retry import RetryPolicy, decide_retry, parse_retry_after, rate_limit_pause
from ._tracing import CallRecord, call_span, operation_of_post, page_attributes
from ._transport import Transport
from .errors import (
    APIConnectionError,
    APIStatusError,
    make_status_error,
    request_id_of,
)

__all__ = ["HTTPSession", "status_error"]

logger = logging.getLogger("external_messages_async")


@attrs.define(eq=False)
class HTTPSession:
    """Sends logical calls to one PBX: auth, limiter, retries over a transport.

    Attributes:
        transport: Where single attempts go (shared by views).
        auth: Where the ``Authorization`` header comes from.
        limiter: The client-wide cap on attempts in flight.
        timeout: Seconds one attempt may take, body included.
        retry: The retry settings.
    """

    transport: Transport
    auth: Auth
    limiter: Limiter
    timeout: float
    retry: RetryPolicy

    @property
    def api_url(self) -> URL:
        """The API root, ending in ``/api``."""
        return self.transport.api_url

    @property
    def closed(self) -> bool:
        """Whether the transport is closed."""
        return self.transport.closed

    async def post(
        self,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> RawResponse:
        """One plain attempt for an auth strategy (see ``AuthTransport.post``)."""
        url = self.api_url.joinpath(path)
        name = operation_of_post(path, form, json)
        attributes = {"http.request.method": "POST", "url.path": url.raw_path}
        with call_span(name, attributes) as record:
            started = time.monotonic()
            record.attempts = 1
            response = await self.transport.send(
                "POST",
                url,
                timeout=self.timeout,
                data=form,
                json=json,
                authorization=f"Bearer {token}" if token is not None else None,
            )
            record.status = response.status
            _log_attempt("POST", url, response, started, attempt=1)
            return response

    async def request(
        self, method: str, url: URL, *, params: Mapping[str, str] | None = None
    ) -> RawResponse:
        """Send a request with auth and retries; return a 2xx answer.

        Args:
            method: The HTTP method (only safe, idempotent ones are retried).
            url: The absolute URL.
            params: Query parameters.

        Returns:
            The successful response, with ``attempts`` and ``elapsed`` set.

        Raises:
            APIStatusError: A final non-2xx answer (a subclass per status).
            APIConnectionError: The last attempt got no answer.
            ResponseDecodeError: A 2xx body is larger than the cap.
        """
        name, attributes = page_attributes(method, url.raw_path, params)
        with call_span(name, attributes) as record:
            return await self._call(method, url, params, record)

    async def _call(
        self,
        method: str,
        url: URL,
        params: Mapping[str, str] | None,
        record: CallRecord,
    ) -> RawResponse:
        started = time.monotonic()
        retries = 0
        replayed = False
        while True:
            authorization = await self.auth.authorization(self)
            record.attempts += 1
            try:
                response = await self._attempt(
                    method, url, params, authorization, record.attempts
                )
            except APIConnectionError as exc:
                decision = decide_retry(
                    retries_done=retries, policy=self.retry, status=None
                )
                if not decision.retry:
                    raise
                why = str(exc)
            else:
                status = record.status = response.status
                if 200 <= status < 300:
                    self.limiter.on_success()
                    return attrs.evolve(
                        response,
                        attempts=record.attempts,
                        elapsed=time.monotonic() - started,
                    )
                if status == 401 and self.auth.manages_token and not replayed:
                    replayed = True
                    if await self.auth.on_unauthorized(self, authorization):
                        logger.debug(
                            "replaying %s %s after a token refresh",
                            method,
                            url.raw_path,
                        )
                        continue
                decision = decide_retry(
                    retries_done=retries,
                    policy=self.retry,
                    status=status,
                    headers=response.headers,
                )
                if not decision.retry:
                    raise status_error(
                        method, url, response, decision.retry_after, authorization
                    )
                why = decision.reason
            logger.debug(
                "retrying %s %s in %.3fs (retry %d of %d): %s",
                method, url.raw_path, decision.delay, retries + 1,
                self.retry.max_retries, why,
            )  # fmt: skip
            await asyncio.sleep(decision.delay)
            retries += 1

    async def _attempt(
        self,
        method: str,
        url: URL,
        params: Mapping[str, str] | None,
        authorization: str | None,
        attempt: int,
    ) -> RawResponse:
        """Hold a place in the limiter for one attempt; note a 429 while holding it."""
        async with self.limiter.slot() as epoch:
            started = time.monotonic()
            try:
                response = await self.transport.send(
                    method,
                    url,
                    timeout=self.timeout,
                    params=params,
                    authorization=authorization,
                )
            except APIConnectionError as exc:
                _log_attempt(method, url, None, started, attempt, failure=exc)
                raise
            _log_attempt(method, url, response, started, attempt)
            if response.status == 429:
                # Noted while the place is held, so that no waiter starts
                # between this answer and the pause.
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                self.limiter.on_rate_limited(
                    rate_limit_pause(retry_after, self.retry), epoch=epoch
                )
            return response

    async def aclose(self) -> None:
        """Revoke what the auth holds (best effort), then close the transport.

        Safe to call twice.

        Raises:
            ClientStateError: Called from another event loop than the one that
                opened the pool, while that one still runs; close it there.
        """
        if self.transport.closed:
            return
        revoke = self.transport.open_in_this_loop()
        try:
            if revoke:
                try:
                    await self.auth.aclose(self)
                except Exception as exc:  # best effort on the way out
                    logger.debug(
                        "closing the authentication failed: %s", type(exc).__name__
                    )
        finally:
            await self.transport.aclose()


def _log_attempt(
    method: str,
    url: URL,
    response: RawResponse | None,
    started: float,
    attempt: int,
    failure: Exception | None = None,
) -> None:
    """One DEBUG line per attempt: never the query (it may hold data) or a token."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    ms = (time.monotonic() - started) * 1000
    if response is None:
        outcome = type(failure).__name__
        request_id = None
    else:
        outcome = str(response.status)
        request_id = request_id_of(response.headers)
    logger.debug(
        "attempt %d: %s %s -> %s in %.0f ms [request id %s]",
        attempt, method, url.raw_path, outcome, ms, request_id or "-",
    )  # fmt: skip


def status_error(
    method: str,
    url: URL,
    response: RawResponse,
    retry_after: float | None,
    authorization: str | None,
) -> APIStatusError:
    """Build the exception for a final error answer; the caller raises it.

    Args:
        method: The HTTP method.
        url: The request URL.
        response: The answer.
        retry_after: The parsed ``Retry-After``, for 429.
        authorization: The header sent, redacted wherever the body echoes it.

    Returns:
        The exception.
    """
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
