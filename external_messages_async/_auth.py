"""Authentication strategies: where the ``Authorization`` header comes from.

The client asks its :class:`Auth` for a header before every attempt, tells it
about a 401, and lets it clean up on close. A strategy that obtains tokens
itself uses the :class:`AuthTransport` it is handed: one plain attempt, no
``Authorization`` header unless asked, no retries.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import attrs

__all__ = [
    "Auth",
    "AuthTransport",
    "RawResponse",
    "TokenAuth",
    "TokenProviderAuth",
    "check_header_value",
]


@attrs.frozen
class RawResponse:
    """A response read in full: what pure decision code works on.

    Attributes:
        status: The HTTP status.
        headers: The response headers (case-insensitive).
        body: The raw body.
        truncated: Whether ``body`` is only the start of an error answer
            longer than ``max_response_bytes``.
        path: The URL path the request went to, such as
            ``/api/login/oauth/token`` (``""`` when unknown).
        attempts: How many attempts the call made, this one included.
        elapsed: Seconds from the call's start to this answer, retries and
            their waits included.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = attrs.field(repr=False)
    truncated: bool = False
    path: str = ""
    attempts: int = 1
    elapsed: float = 0.0


#: Characters no HTTP header value may hold (CR and LF would start a new
#: header; aiohttp refuses them with a bare ValueError).
_HEADER_BREAKERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_header_value(authorization: str) -> None:
    """Refuse an ``Authorization`` value that is not a valid header value.

    The value is never shown: it holds a token. Tokens from a login answer
    are checked where they arrive (an
    :class:`~external_messages_async.errors.AuthenticationError`); this is the
    last guard, for values from a custom :class:`Auth`.

    Args:
        authorization: The header value about to be sent.

    Raises:
        ValueError: It holds CR, LF or another control character.
    """
    if _HEADER_BREAKERS.search(authorization):
        raise ValueError(
            "the Authorization value is not a valid HTTP header value (it holds "
            "a control character such as CR or LF); nothing was sent with it"
        )


class AuthTransport(Protocol):
    """What an :class:`Auth` may use to talk to the token endpoints."""

    async def post(
        self,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> RawResponse:
        """Send one POST to ``<base_url>/<path>`` and read the whole answer.

        Args:
            path: The path under the API root, such as ``login/oauth/token``.
            form: A form-encoded body.
            json: A JSON body.
            token: A bearer token to send, if any.

        Returns:
            The response, whatever its status.

        Raises:
            APIConnectionError: No HTTP answer came back.
        """
        ...


class Auth:
    """The base of every authentication strategy.

    Subclass it to plug in another way of getting a token. The defaults send
    no header and treat a 401 as final.
    """

    #: Whether the strategy obtains tokens itself and can renew one after a 401.
    manages_token: bool = False

    async def authorization(self, transport: AuthTransport) -> str | None:
        """Return the ``Authorization`` header value for the next attempt.

        Args:
            transport: For strategies that must log in first.

        Returns:
            The header value, such as ``"Bearer abc"``, or ``None`` for none.
        """
        return None

    async def on_unauthorized(self, transport: AuthTransport, sent: str | None) -> bool:
        """React to a 401 answered to a request that carried ``sent``.

        Args:
            transport: For strategies that renew their token.
            sent: The header value the refused request carried.

        Returns:
            Whether replaying the request once is worth it.
        """
        return False

    async def aclose(self, transport: AuthTransport) -> None:
        """Release what the strategy holds, such as revoking its own token.

        Args:
            transport: For strategies that revoke a token on close.
        """


@attrs.frozen
class TokenAuth(Auth):
    """A fixed bearer token, obtained elsewhere. A 401 with it is final.

    Args:
        token: The access token; never shown in ``repr``.
    """

    token: str = attrs.field(repr=False)

    @token.validator
    def _check(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"token must be a str, got {type(value).__name__}")
        if not value.strip():
            raise ValueError("token must not be empty")
        if _HEADER_BREAKERS.search(value):
            raise ValueError(
                "token must be a valid HTTP header value (no CR, LF or other "
                "control characters)"
            )

    async def authorization(self, transport: AuthTransport) -> str | None:
        """Return ``Bearer <token>``.

        Args:
            transport: Unused.

        Returns:
            The header value.
        """
        return f"Bearer {self.token}"


def _check_token(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"the token provider must return a str, got {type(value).__name__}"
        )
    if not value.strip():
        raise ValueError("the token provider returned an empty token")
    if _HEADER_BREAKERS.search(value):
        raise ValueError(
            "the token provider returned a token that is not a valid HTTP header "
            "value (it holds CR, LF or another control character)"
        )
    return value


@attrs.define(eq=False)
class TokenProviderAuth(Auth):
    """A token fetched from your code (a secret store, a vault) before every attempt.

    The provider is awaited before every attempt, retries included, so a
    rotated token is picked up by the next attempt; cache in the provider if
    fetching is expensive. After a 401 the provider is awaited once more: if
    it returns a different token, the call is replayed once (awaiting the
    provider again for that attempt, as for every attempt); if it returns the
    same token, the 401 is final. A second 401 is always final.

    Args:
        provider: An async callable with no arguments returning the token.

    Raises:
        TypeError: ``provider`` is not callable.
    """

    manages_token = True

    provider: Callable[[], Awaitable[str]] = attrs.field(repr=False)

    @provider.validator
    def _check(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not callable(value):
            raise TypeError(
                f"token_provider must be callable, got {type(value).__name__}"
            )

    async def authorization(self, transport: AuthTransport) -> str | None:
        """Await the provider and return ``Bearer <token>``.

        Args:
            transport: Unused.

        Returns:
            The header value.

        Raises:
            TypeError: The provider returned something other than a str.
            ValueError: The provider returned an empty token.
        """
        return f"Bearer {_check_token(await self.provider())}"

    async def on_unauthorized(self, transport: AuthTransport, sent: str | None) -> bool:
        """Ask the provider again; replay only if the token changed.

        Args:
            transport: Unused.
            sent: The header value the refused request carried.

        Returns:
            Whether the provider now returns a different token.

        Raises:
            TypeError: The provider returned something other than a str.
            ValueError: The provider returned an empty token.
        """
        return f"Bearer {_check_token(await self.provider())}" != sent
