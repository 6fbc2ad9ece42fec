"""Logging in with a username and password: token requests, answers, lifecycle.

Two flows reach the same token set. The ``"oauth"`` flow is PortSIP's
developer-guide endpoint (``POST login/oauth/token``, form-encoded, revoked with
``POST login/oauth/revoke``); the ``"json"`` flow is the spec's
``POST auth/sign_in`` / ``auth/refresh_token`` / ``auth/sign_out``.

What to send, how to read the answer and when a token is due for a refresh are
pure functions; :class:`PasswordAuth` is the thin shell that sends the requests,
one at a time (single flight), through the client's :class:`AuthTransport`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs
import orjson

from ._auth import _HEADER_BREAKERS, Auth, AuthTransport, RawResponse
from .errors import (
    APIStatusError,
    AuthenticationError,
    ExternalMessagesError,
    ResponseDecodeError,
    make_status_error,
    parse_error_body,
)

__all__ = [
    "CLIENT_ID",
    "LoginFlow",
    "PasswordAuth",
    "TokenRequest",
    "TokenSet",
    "is_refused",
    "password_request",
    "read_token_answer",
    "refresh_request",
    "refresh_window",
    "request_secrets",
    "sign_out_path",
]

logger = logging.getLogger("external_messages_async")

#: The fixed ``client_id`` PortSIP's token endpoint expects (from its docs).
CLIENT_ID = "9d806019-75b2-4b3d-bb8b-f5a3a412cc0a"

#: Which endpoints a :class:`PasswordAuth` logs in with.
LoginFlow = Literal["oauth", "json"]

_FLOWS = ("oauth", "json")

#: The longest advisory window: a token is renewed this long before it expires.
MAX_REFRESH_WINDOW = 60.0


@attrs.frozen
class TokenRequest:
    """One POST to a token endpoint: where, and the body (never shown).

    Attributes:
        path: The path under the API root.
        form: A form-encoded body, for the ``"oauth"`` flow.
        json: A JSON body, for the ``"json"`` flow.
    """

    path: str
    form: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    json: Mapping[str, Any] | None = attrs.field(default=None, repr=False)


@attrs.frozen
class TokenSet:
    """The tokens one login or refresh answered, and when they arrived.

    Attributes:
        access_token: The bearer token; never shown in ``repr``.
        refresh_token: The token to renew it with, or ``None`` if none came.
        expires_in: The access token's lifetime in seconds, or ``None`` when
            the answer gave none (then only a 401 renews it).
        obtained_at: The clock reading when the answer arrived.
    """

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(repr=False)
    expires_in: float | None
    obtained_at: float

    def due(self, now: float) -> bool:
        """Tell whether the token should be renewed before its next use.

        Args:
            now: The current clock reading (same clock as ``obtained_at``).

        Returns:
            ``True`` once ``now`` is inside the advisory window before expiry.
        """
        if self.expires_in is None:
            return False
        expires_at = self.obtained_at + self.expires_in
        return now >= expires_at - refresh_window(self.expires_in)


def refresh_window(lifetime: float) -> float:
    """Return how long before expiry a token of ``lifetime`` seconds is renewed.

    Args:
        lifetime: The token's ``expires_in``.

    Returns:
        60 seconds, or a tenth of the lifetime for tokens shorter than 10 minutes.
    """
    return min(MAX_REFRESH_WINDOW, lifetime / 10)


def password_request(
    flow: LoginFlow, *, username: str, password: str, domain: str | None
) -> TokenRequest:
    """Build the login request of ``flow``.

    Args:
        flow: ``"oauth"`` or ``"json"``.
        username: The account name.
        password: The password.
        domain: The tenant's SIP domain; sent only when given.

    Returns:
        The request to send.
    """
    fields = {"username": username, "password": password}
    if domain is not None:
        fields["domain"] = domain
    if flow == "json":
        return TokenRequest("auth/sign_in", json=fields)
    form = {"grant_type": "password", **fields, "scope": "all", "client_id": CLIENT_ID}
    return TokenRequest("login/oauth/token", form=form)


def refresh_request(flow: LoginFlow, refresh_token: str) -> TokenRequest:
    """Build the refresh request of ``flow``.

    Args:
        flow: ``"oauth"`` or ``"json"``.
        refresh_token: The refresh token of the current token set.

    Returns:
        The request to send.
    """
    if flow == "json":
        return TokenRequest("auth/refresh_token", json={"refresh_token": refresh_token})
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
    }
    return TokenRequest("login/oauth/token", form=form)


def sign_out_path(flow: LoginFlow) -> str:
    """Return where ``flow`` revokes a token (sent with it as the bearer).

    Args:
        flow: ``"oauth"`` or ``"json"``.

    Returns:
        The path under the API root.
    """
    return "auth/sign_out" if flow == "json" else "login/oauth/revoke"


def is_refused(response: RawResponse) -> bool:
    """Tell whether a token endpoint refused the credentials it was sent.

    PortSIP answers a failed login with 400 and code ``UNAUTHORIZED``; a plain
    401 means the same.

    Args:
        response: The token endpoint's answer.

    Returns:
        Whether the answer is a refusal (rather than a fault or a success).
    """
    if response.status == 401:
        return True
    if response.status != 400:
        return False
    errors = parse_error_body(response.body)
    return bool(errors) and errors[0].code == "UNAUTHORIZED"


def request_secrets(request: TokenRequest) -> tuple[str, ...]:
    """List what a token endpoint's error answer must never be allowed to carry.

    A server or a proxy may echo the request in its error body; the password
    and the refresh token are then removed, as sent and as a form or JSON
    string encodes them.

    Args:
        request: The login or refresh request that was sent.

    Returns:
        The strings to redact.
    """
    fields = {**(request.form or {}), **(request.json or {})}
    secrets: set[str] = set()
    for name in ("password", "refresh_token"):
        value = fields.get(name)
        if isinstance(value, str) and value:
            secrets.update(
                (
                    value,
                    urllib.parse.quote_plus(value),
                    urllib.parse.quote(value, safe=""),
                    orjson.dumps(value)[1:-1].decode(),
                )
            )
    return tuple(sorted(secrets, key=len, reverse=True))


def read_token_answer(
    response: RawResponse, *, path: str, now: float, secrets: Iterable[str] = ()
) -> TokenSet:
    """Turn a token endpoint's answer into a :class:`TokenSet`, or an error.

    Args:
        response: The answer to a login or refresh.
        path: The request path, for messages, when ``response.path`` is empty.
        now: The clock reading to stamp the token set with.
        secrets: Strings an error answer may echo that must not be kept
            (see :func:`request_secrets`).

    Returns:
        The tokens.

    Raises:
        AuthenticationError: The credentials were refused (with PortSIP's
            message), the account needs a second factor, or the token is not
            a valid header value.
        APIStatusError: Another error answer.
        ResponseDecodeError: A 2xx answer without an ``access_token``.
    """
    # The form users see everywhere: "POST /api/login/oauth/token".
    path = response.path or path
    if not 200 <= response.status < 300:
        error = make_status_error(
            method="POST",
            path=path,
            status=response.status,
            headers=response.headers,
            body=response.body,
            secrets=secrets,
        )
        if is_refused(response):
            raise _as_authentication_error(error, f"login refused: {error}")
        raise error
    try:
        data = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if data.get("two_factor_enabled") is True:
        raise AuthenticationError(
            f"POST {path}: this account has two-factor authentication enabled, "
            "which a password login cannot complete; create a token in PortSIP "
            "and pass token= (or token_provider=) instead of username/password",
            status=response.status,
            method="POST",
            path=path,
        )
    # The body holds the tokens, so no message below may quote it.
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise ResponseDecodeError(
            f"POST {path} -> {response.status}: the answer has no access_token",
            path="$.access_token",
        )
    if _HEADER_BREAKERS.search(access):
        raise AuthenticationError(
            f"POST {path} -> {response.status}: the PBX issued an access token "
            "that is not a valid HTTP header value (it holds CR, LF or another "
            "control character); it was not used",
            status=response.status,
            method="POST",
            path=path,
        )
    refresh = data.get("refresh_token")
    return TokenSet(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_in=_lifetime(data.get("expires_in")),
        obtained_at=now,
    )


def _lifetime(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _as_authentication_error(
    error: APIStatusError, message: str
) -> AuthenticationError:
    return AuthenticationError(
        message,
        status=error.status,
        errors=error.errors,
        body=error.body,
        request_id=error.request_id,
        method=error.method,
        path=error.path,
    )


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


@attrs.define(eq=False, kw_only=True)
class PasswordAuth(Auth):
    """Log in with a username and password; refresh and renew the token as needed.

    The first request logs in. Inside the advisory window before the token
    expires (60 seconds, or a tenth of its lifetime for short tokens) the next
    request refreshes it first; a refused refresh falls back to a fresh
    password login. A 401 renews the token the same way and the call is
    replayed once. However many tasks need a token at once, one login or
    refresh is in flight: the others wait for it and use its result.
    :meth:`aclose` revokes the token this object obtained, as a best effort.

    Args:
        username: The account name.
        password: The password; never shown in ``repr``.
        domain: The tenant's SIP domain, for a tenant user; sent only when given.
        flow: ``"oauth"`` (``POST /api/login/oauth/token``, the default) or
            ``"json"`` (``POST /api/auth/sign_in``).
        clock: Monotonic seconds; replaceable in tests.

    Raises:
        TypeError: A credential is not a string, or ``clock`` is not callable.
        ValueError: A credential is empty, or ``flow`` is unknown.
    """

    manages_token = True

    username: str
    password: str = attrs.field(repr=False)
    domain: str | None = None
    flow: LoginFlow = "oauth"
    clock: Callable[[], float] = attrs.field(default=time.monotonic, repr=False)
    _tokens: TokenSet | None = attrs.field(default=None, init=False, repr=False)
    _lock: asyncio.Lock | None = attrs.field(default=None, init=False, repr=False)
    # Bumped by every finished login or refresh, successful or not (a
    # cancelled one does not finish), so tasks that waited for it know to
    # share its outcome.
    _generation: int = attrs.field(default=0, init=False, repr=False)
    _failure: ExternalMessagesError | None = attrs.field(
        default=None, init=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        _check_str("username", self.username)
        _check_str("password", self.password)
        if self.domain is not None:
            _check_str("domain", self.domain)
        if self.flow not in _FLOWS:
            raise ValueError(f"flow must be 'oauth' or 'json', got {self.flow!r}")
        if not callable(self.clock):
            raise TypeError(f"clock must be callable, got {type(self.clock).__name__}")

    async def authorization(self, transport: AuthTransport) -> str | None:
        """Return ``Bearer <token>``, logging in or refreshing first when due.

        Args:
            transport: Where the token requests go.

        Returns:
            The header value.

        Raises:
            AuthenticationError: The login was refused, or needs a second factor.
            APIStatusError: The token endpoint answered another error.
            APIConnectionError: The token endpoint did not answer.
            ResponseDecodeError: The token endpoint's answer has no token.
        """
        tokens = self._tokens
        if tokens is None or tokens.due(self.clock()):
            tokens = await self._renew(transport, seen=tokens)
        return f"Bearer {tokens.access_token}"

    async def on_unauthorized(self, transport: AuthTransport, sent: str | None) -> bool:
        """Renew the token the refused request carried, unless already renewed.

        Args:
            transport: Where the token requests go.
            sent: The header value the refused request carried.

        Returns:
            ``True``: the request is worth one replay with the new token.

        Raises:
            AuthenticationError: The new login was refused.
            APIStatusError: The token endpoint answered another error.
            APIConnectionError: The token endpoint did not answer.
        """
        tokens = self._tokens
        if tokens is not None and sent == f"Bearer {tokens.access_token}":
            await self._renew(transport, seen=tokens)
        return True

    async def aclose(self, transport: AuthTransport) -> None:
        """Revoke the token this object obtained; failures are only logged.

        Args:
            transport: Where the revocation goes.
        """
        tokens, self._tokens = self._tokens, None
        if tokens is None:
            return
        path = sign_out_path(self.flow)
        try:
            response = await transport.post(path, token=tokens.access_token)
        except Exception as exc:  # best effort: closing must not fail on it
            logger.debug("revoking the token failed: %s", type(exc).__name__)
            return
        if not 200 <= response.status < 300:
            logger.debug("revoking the token answered %d", response.status)

    async def _renew(
        self, transport: AuthTransport, *, seen: TokenSet | None
    ) -> TokenSet:
        generation = self._generation
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._generation != generation:
                # Another task finished a login or refresh while this one
                # waited: share its outcome instead of sending another.
                if self._failure is not None:
                    raise self._failure
                # None only if aclose() ran meanwhile; the request below then
                # fails with ClientStateError.
                if self._tokens is not None:  # pragma: no branch
                    return self._tokens
            # A cancelled attempt is not a finished one: the generation stays,
            # so a task waiting here tries for itself instead of sharing an
            # older outcome.
            try:
                tokens = await self._obtain(transport, seen)
            except ExternalMessagesError as exc:
                self._failure = exc
                self._generation += 1
                raise
            self._failure = None
            self._tokens = tokens
            self._generation += 1
            return tokens

    async def _obtain(
        self, transport: AuthTransport, seen: TokenSet | None
    ) -> TokenSet:
        if seen is not None and seen.refresh_token is not None:
            tokens = await self._refresh(transport, seen.refresh_token)
            if tokens is not None:
                return tokens
        request = password_request(
            self.flow,
            username=self.username,
            password=self.password,
            domain=self.domain,
        )
        tokens = self._read(request, await _post(transport, request))
        logger.debug("logged in (%s flow)", self.flow)
        return tokens

    async def _refresh(
        self, transport: AuthTransport, refresh_token: str
    ) -> TokenSet | None:
        request = refresh_request(self.flow, refresh_token)
        response = await _post(transport, request)
        # Whatever the reason a refresh token is not accepted (expired,
        # revoked, already used), the password can still get a new one.
        if response.status in (400, 401):
            logger.debug(
                "the refresh was refused (%d); logging in again", response.status
            )
            return None
        tokens = self._read(request, response)
        logger.debug("refreshed the token (%s flow)", self.flow)
        return tokens

    def _read(self, request: TokenRequest, response: RawResponse) -> TokenSet:
        return read_token_answer(
            response,
            path=request.path,
            now=self.clock(),
            secrets=request_secrets(request),
        )


async def _post(transport: AuthTransport, request: TokenRequest) -> RawResponse:
    return await transport.post(request.path, form=request.form, json=request.json)
