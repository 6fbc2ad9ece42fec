"""Credentials, issued tokens and the login decisions, free of any HTTP code."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

PORTSIP_CLIENT_ID = "9d806019-75b2-4b3d-bb8b-f5a3a412cc0a"
"""The fixed ``client_id`` PortSIP's OAuth-style token endpoint expects."""

LOGIN_FAILED = "Login failed, authentication error"

Outcome = tuple[int, str, Any]
"""``(status, error code or "", payload or error message)``."""


class TokenStore:
    """Issued access and refresh tokens, their expiry and revocation.

    Args:
        static_token: A token that is always valid, or ``None`` for none.
        users: Username to password accepted at login.
        domains: Tenant domains accepted at login; ``None`` accepts any.
        two_factor_users: Users whose sign-in answers a two-factor challenge.
        lifetime: Seconds an access token lives.
        refresh_lifetime: Seconds a refresh token lives.
        clock: Source of monotonic time, replaceable in tests.
    """

    def __init__(
        self,
        *,
        static_token: str | None,
        users: Mapping[str, str],
        domains: Collection[str] | None,
        two_factor_users: Collection[str],
        lifetime: float,
        refresh_lifetime: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.static_token = static_token
        self.users = dict(users)
        self.domains = None if domains is None else frozenset(domains)
        self.two_factor_users = frozenset(two_factor_users)
        self.lifetime = lifetime
        self.refresh_lifetime = refresh_lifetime
        self._clock = clock
        self._access: dict[str, float] = {}
        self._refresh: dict[str, tuple[float, str]] = {}
        self.login_count = 0
        self.refresh_count = 0
        self.revoked_tokens: set[str] = set()

    def is_valid(self, token: str) -> bool:
        """Tell whether a bearer token is accepted right now.

        Args:
            token: The token from an ``Authorization: Bearer`` header.

        Returns:
            ``True`` for the static token or an issued, unexpired, unrevoked one.
        """
        if self.static_token is not None and secrets.compare_digest(
            token, self.static_token
        ):
            return True
        expires_at = self._access.get(token)
        return expires_at is not None and self._clock() < expires_at

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        now = self._clock()
        self._access[access] = now + self.lifetime
        self._refresh[refresh] = (now + self.refresh_lifetime, access)
        return {
            "access_token": access,
            "expires_in": math.ceil(self.lifetime),
            "refresh_token": refresh,
            "token_type": "Bearer",
        }

    def _credentials_ok(self, fields: Mapping[str, Any]) -> bool:
        username, password = fields.get("username"), fields.get("password")
        domain = fields.get("domain")
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        expected = self.users.get(username)
        if expected is None or not secrets.compare_digest(password, expected):
            return False
        return not (domain and self.domains is not None and domain not in self.domains)

    def password_grant(self, form: Mapping[str, str]) -> Outcome:
        """Answer ``POST /api/login/oauth/token``, either grant type.

        Args:
            form: The decoded form fields.

        Returns:
            ``(200, "", token set)`` or ``(400, code, message)``.
        """
        if form.get("client_id") != PORTSIP_CLIENT_ID:
            return 400, "VALIDATE_FAILED", f"client_id must be {PORTSIP_CLIENT_ID}"
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return self.refresh(form.get("refresh_token"))
        if grant_type != "password":
            return (
                400,
                "VALIDATE_FAILED",
                "grant_type must be password or refresh_token",
            )
        if form.get("scope") != "all":
            return 400, "VALIDATE_FAILED", "scope must be all"
        if not self._credentials_ok(form):
            return 400, "UNAUTHORIZED", LOGIN_FAILED
        self.login_count += 1
        return 200, "", self._issue()

    def sign_in(self, body: Any) -> Outcome:
        """Answer ``POST /api/auth/sign_in``.

        Args:
            body: The decoded JSON body.

        Returns:
            ``(200, "", token set or two-factor challenge)`` or
            ``(400, code, message)``.
        """
        if not isinstance(body, dict) or not self._credentials_ok(body):
            return 400, "UNAUTHORIZED", LOGIN_FAILED
        self.login_count += 1
        if body["username"] in self.two_factor_users:
            return (
                200,
                "",
                {"two_factor_enabled": True, "token": secrets.token_urlsafe(24)},
            )
        return 200, "", self._issue()

    def refresh(self, refresh_token: Any) -> Outcome:
        """Trade a refresh token for a new token set; the old one stops working.

        Args:
            refresh_token: The refresh token sent by the client.

        Returns:
            ``(200, "", token set)`` or ``(400, "UNAUTHORIZED", message)``.
        """
        entry = (
            self._refresh.pop(refresh_token, None)
            if isinstance(refresh_token, str)
            else None
        )
        if entry is None or self._clock() >= entry[0]:
            return 400, "UNAUTHORIZED", "refresh token is invalid or expired"
        self.refresh_count += 1
        return 200, "", self._issue()

    def revoke(self, access_token: str) -> None:
        """Revoke an access token and the refresh token issued with it.

        Args:
            access_token: The token to revoke.
        """
        self._access.pop(access_token, None)
        self._refresh = {
            token: entry
            for token, entry in self._refresh.items()
            if entry[1] != access_token
        }
        self.revoked_tokens.add(access_token)

    def expire_all(self) -> None:
        """Expire every issued access token; refresh tokens keep working."""
        self._access.clear()
