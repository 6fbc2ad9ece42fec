"""Authentication strategies: where the ``Authorization`` header comes from.

The client asks its :class:`Auth` for a header before every attempt, tells it
about a 401, and lets it clean up on close. A strategy that obtains tokens
itself uses the :class:`AuthTransport` it is handed: one plain attempt, no
``Authorization`` header unless asked, no retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs

__all__ = ["Auth", "AuthTransport", "RawResponse", "TokenAuth"]


@attrs.frozen
class RawResponse:
    """A response read in full: what pure decision code works on.

    Attributes:
        status: The HTTP status.
        headers: The response headers (case-insensitive).
        body: The raw body.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = attrs.field(repr=False)


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

    async def authorization(self, transport: AuthTransport) -> str | None:
        """Return ``Bearer <token>``.

        Args:
            transport: Unused.

        Returns:
            The header value.
        """
        return f"Bearer {self.token}"
