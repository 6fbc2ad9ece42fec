"""The aiohttp application behind FakePortSIPServer: middleware and handlers."""

from __future__ import annotations

import asyncio
import inspect
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from ._auth import Outcome
from ._faults import FaultKind, ScriptedResponse, draw_fault
from ._state import ServerState
from ._store import QueryError, parse_list_query
from ._wire import PROXY_500_PAGE, RecordedRequest, error_body, error_code

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_DATA_PREFIXES = ("/api/external_messages/", "/api/user/external_messages/")


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/json"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(
        status=status, body=error_body(code, message), content_type="application/json"
    )


def _answer(outcome: Outcome) -> web.Response:
    status, code, payload = outcome
    return _json(payload) if status == 200 else _error(status, code, payload)


def _body_of(response: web.StreamResponse) -> bytes:
    body = response.body if isinstance(response, web.Response) else None
    return body if isinstance(body, bytes) else b""


def _render(script: ScriptedResponse) -> tuple[bytes, str]:
    body = script.body
    if body is None:
        body_bytes = error_body(error_code(script.status), f"scripted {script.status}")
        content_type = "application/json"
    elif isinstance(body, bytes):
        body_bytes, content_type = body, "application/octet-stream"
    elif isinstance(body, str):
        body_bytes, content_type = body.encode(), "text/plain; charset=utf-8"
    else:
        body_bytes, content_type = orjson.dumps(body), "application/json"
    return body_bytes, script.content_type or content_type


class Handlers:
    """Serve a fake server's state over HTTP.

    Args:
        state: The messages, tokens, knobs and records to serve and update.
    """

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def make_app(self) -> web.Application:
        """Build the aiohttp application.

        Returns:
            The application, with PortSIP's data and login routes.
        """
        app = web.Application(
            middlewares=[self._middleware], client_max_size=self._state.max_body_bytes
        )
        for prefix in ("/api", "/api/user"):
            app.router.add_get(
                f"{prefix}/external_messages",
                self._list,
                name=f"data-list{prefix[4:].replace('/', '-')}",
            )
            app.router.add_get(
                # Any id, line breaks included: "." alone stops at a newline.
                f"{prefix}/external_messages/{{id:[\\s\\S]+}}",
                self._get,
                name=f"data-get{prefix[4:].replace('/', '-')}",
            )
        app.router.add_post("/api/login/oauth/token", self._oauth_token)
        app.router.add_post("/api/login/oauth/revoke", self._revoke)
        app.router.add_post("/api/auth/sign_in", self._sign_in)
        app.router.add_post("/api/auth/refresh_token", self._refresh)
        app.router.add_post("/api/auth/sign_out", self._revoke)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        received_at = time.monotonic()
        try:
            body = await request.read()
        except web.HTTPException as exc:
            body = b""
            failure: web.HTTPException | None = exc
        else:
            failure = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=request.rel_url.raw_path,
            query=dict(request.query.items()),
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=body,
            received_at=received_at,
        )
        self._state.enter(recorded)
        try:
            if failure is not None:
                raise failure
            return await self._dispatch(request, handler, recorded)
        except web.HTTPException as exc:
            response = _error(exc.status, error_code(exc.status), exc.reason)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        finally:
            self._state.leave()

    async def _dispatch(
        self, request: web.Request, handler: _Handler, recorded: RecordedRequest
    ) -> web.StreamResponse:
        is_data = (request.match_info.route.name or "").startswith("data")
        script = self._state.take_script(request.path, is_data=is_data)
        if script is None and self._state.on_request is not None:
            answer = self._state.on_request(recorded)
            script = await answer if inspect.isawaitable(answer) else answer
        if script is not None:
            return await self._play(script, request, handler)
        faults = self._state.faults
        if not (is_data or faults.apply_to_auth):
            return await handler(request)
        if faults.latency and await self._sleep(faults.latency):
            return self._drop(request)
        kind = draw_fault(faults, self._state.rng)
        if kind is None:
            return await handler(request)
        if kind is FaultKind.DROP:
            return self._drop(request)
        if kind is FaultKind.PROXY_500:
            return web.Response(
                status=500, body=PROXY_500_PAGE, content_type="text/html"
            )
        if kind is FaultKind.UNAVAILABLE_503:
            return web.Response(status=503)
        if kind is FaultKind.RATE_LIMITED_429:
            response = _error(429, "TOO_MANY_REQUESTS", "rate limit exceeded")
            if faults.retry_after is not None:
                response.headers["Retry-After"] = faults.retry_after
            return response
        body = _body_of(await handler(request))
        return web.Response(
            status=200, body=body[: len(body) // 2], content_type="application/json"
        )

    async def _play(
        self, script: ScriptedResponse, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        if script.delay and await self._sleep(script.delay):
            return self._drop(request)
        if script.hang:
            await self._state.closing.wait()
        if script.drop or script.hang:
            return self._drop(request)
        if script.body is None and script.status == 200:
            normal = await handler(request)
            status, body = normal.status, _body_of(normal)
            content_type = script.content_type or normal.content_type
        else:
            status = script.status
            body, content_type = _render(script)
        headers = {"Content-Type": content_type, **script.headers}
        if script.trickle is None:
            return web.Response(status=status, body=body, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        try:
            await response.prepare(request)
            for start in range(0, len(body), script.trickle_chunk):
                if await self._sleep(script.trickle):
                    return self._drop(request, response)
                await response.write(body[start : start + script.trickle_chunk])
            await response.write_eof()
        except ConnectionResetError:
            pass  # The client gave up waiting, which is what trickling tests.
        return response

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early if the server closes; tell whether it did."""
        try:
            await asyncio.wait_for(self._state.closing.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    @staticmethod
    def _drop(
        request: web.Request, response: web.StreamResponse | None = None
    ) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.close()
        return web.Response() if response is None else response

    def _denied(self, request: web.Request) -> web.Response | None:
        if not self._state.auth_required:
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(
                401, "UNAUTHORIZED", "missing Authorization: Bearer <token> header"
            )
        if not self._state.tokens.is_valid(token.strip()):
            return _error(401, "UNAUTHORIZED", "the access token is invalid or expired")
        return None

    async def _list(self, request: web.Request) -> web.StreamResponse:
        denied = self._denied(request)
        if denied is not None:
            return denied
        try:
            query = parse_list_query(
                request.query,
                ignore=self._state.ignore_query,
                max_top=self._state.max_top,
            )
        except QueryError as exc:
            return _error(400, "VALIDATE_FAILED", str(exc))
        hook = self._state.before_list_page
        if hook is not None:
            result = hook(query.skip, query.top)
            if inspect.isawaitable(result):
                await result
        return web.Response(
            body=self._state.store.page(query), content_type="application/json"
        )

    async def _get(self, request: web.Request) -> web.StreamResponse:
        denied = self._denied(request)
        if denied is not None:
            return denied
        # match_info is already decoded, so read the raw segment: an ID may
        # hold an encoded "/", but a literal "/" means a deeper, unknown path.
        raw_path = request.rel_url.raw_path
        segment = next(
            raw_path[len(p) :] for p in _DATA_PREFIXES if raw_path.startswith(p)
        )
        message_id = urllib.parse.unquote(segment)
        body = None if "/" in segment else self._state.store.get(message_id)
        if body is None:
            return _error(
                404, "NOT_FOUND", f"no external message with id {message_id!r}"
            )
        return web.Response(body=body, content_type="application/json")

    async def _oauth_token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        return _answer(self._state.tokens.password_grant(fields))

    async def _json_body(self, request: web.Request) -> Any:
        try:
            return orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return None

    async def _sign_in(self, request: web.Request) -> web.StreamResponse:
        return _answer(self._state.tokens.sign_in(await self._json_body(request)))

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request)
        token = body.get("refresh_token") if isinstance(body, dict) else None
        return _answer(self._state.tokens.refresh(token))

    async def _revoke(self, request: web.Request) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        tokens = self._state.tokens
        if scheme.lower() != "bearer" or not tokens.is_valid(token):
            return _error(401, "UNAUTHORIZED", "the access token is invalid or expired")
        if token != tokens.static_token:
            tokens.revoke(token)
        return _json({})
