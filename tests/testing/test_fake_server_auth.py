"""Login, refresh, revoke, sign-in and bearer checks over loopback."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from external_messages_async.testing import FakePortSIPServer
from tests.conftest import FakeClock

CLIENT_ID = "9d806019-75b2-4b3d-bb8b-f5a3a412cc0a"

pytestmark = pytest.mark.portsip_server(
    messages=3, users={"admin": "pw", "alice": "pw2"}, two_factor_users={"alice"}
)


async def post(
    server: FakePortSIPServer, session: aiohttp.ClientSession, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.post(server.api_url + path, **kwargs) as response:
        return response.status, await response.json()


async def oauth_login(
    server: FakePortSIPServer, session: aiohttp.ClientSession, password: str = "pw"
) -> tuple[int, Any]:
    form = {
        "grant_type": "password",
        "username": "admin",
        "password": password,
        "scope": "all",
        "client_id": CLIENT_ID,
    }
    return await post(server, session, "/login/oauth/token", data=form)


async def list_status(
    server: FakePortSIPServer, session: aiohttp.ClientSession, token: str | None
) -> int:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with session.get(server.api_url + "/external_messages", headers=headers) as r:
        return r.status


async def test_oauth_login_issues_a_working_token(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, tokens = await oauth_login(portsip_server, session)

    assert status == 200
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert await list_status(portsip_server, session, tokens["access_token"]) == 200
    assert portsip_server.login_count == 1


async def test_bad_credentials_are_400_unauthorized(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, body = await oauth_login(portsip_server, session, password="nope")

    assert status == 400
    assert body == {
        "errors": [
            {"code": "UNAUTHORIZED", "message": "Login failed, authentication error"}
        ]
    }


@pytest.mark.parametrize("token", [None, "wrong", ""])
async def test_data_endpoints_need_a_valid_bearer_token(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession, token: str | None
) -> None:
    assert await list_status(portsip_server, session, token) == 401


async def test_401_body_has_portsip_shape(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    async with session.get(portsip_server.api_url + "/user/external_messages/x") as r:
        body = await r.json()

    assert r.status == 401
    assert body["errors"][0]["code"] == "UNAUTHORIZED"


@pytest.mark.portsip_server(auth_required=False)
async def test_auth_required_false_turns_bearer_checks_off(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    assert await list_status(portsip_server, session, None) == 200


@pytest.mark.portsip_server(token=None, token_lifetime=0.2)
async def test_token_none_accepts_issued_tokens_only(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    """Without a static token the checks stay on: issued tokens pass, then expire."""
    _, tokens = await oauth_login(portsip_server, session)
    issued = tokens["access_token"]

    without = await list_status(portsip_server, session, None)
    with_issued = await list_status(portsip_server, session, issued)
    portsip_server.expire_tokens()
    after_expiry = await list_status(portsip_server, session, issued)

    assert (without, with_issued, after_expiry) == (401, 200, 401)


async def test_issued_tokens_expire_after_their_lifetime(
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeClock()
    async with FakePortSIPServer(
        messages=3, users={"admin": "pw"}, token_lifetime=0.2, token_clock=clock
    ) as server:
        _, tokens = await oauth_login(server, session)
        fresh = await list_status(server, session, tokens["access_token"])
        clock.advance(0.19)
        nearly = await list_status(server, session, tokens["access_token"])

        clock.advance(0.01)

        expired = await list_status(server, session, tokens["access_token"])

    assert (fresh, nearly, expired) == (200, 200, 401)
    assert tokens["expires_in"] == 1


async def test_expire_tokens_spares_the_static_token_and_refresh_tokens(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    _, tokens = await oauth_login(portsip_server, session)

    portsip_server.expire_tokens()
    status, renewed = await post(
        portsip_server,
        session,
        "/login/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": CLIENT_ID,
        },
    )

    assert await list_status(portsip_server, session, tokens["access_token"]) == 401
    assert await list_status(portsip_server, session, "demo-token") == 200
    assert status == 200
    assert await list_status(portsip_server, session, renewed["access_token"]) == 200
    assert portsip_server.refresh_count == 1


async def test_refresh_rotates_and_the_old_refresh_token_dies(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    _, tokens = await oauth_login(portsip_server, session)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": CLIENT_ID,
    }

    first = await post(portsip_server, session, "/login/oauth/token", data=form)
    again = await post(portsip_server, session, "/login/oauth/token", data=form)

    assert first[0] == 200
    assert first[1]["refresh_token"] != tokens["refresh_token"]
    assert again == (
        400,
        {
            "errors": [
                {
                    "code": "UNAUTHORIZED",
                    "message": "refresh token is invalid or expired",
                }
            ]
        },
    )


async def test_wrong_client_id_is_400(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, body = await post(
        portsip_server,
        session,
        "/login/oauth/token",
        data={"grant_type": "password", "client_id": "x"},
    )

    assert status == 400
    assert body["errors"][0]["code"] == "VALIDATE_FAILED"


async def test_revoke_invalidates_the_token(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    _, tokens = await oauth_login(portsip_server, session)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    status, _ = await post(
        portsip_server, session, "/login/oauth/revoke", headers=bearer
    )
    again, _ = await post(
        portsip_server, session, "/login/oauth/revoke", headers=bearer
    )

    assert (status, again) == (200, 401)
    assert portsip_server.revoked_tokens == {tokens["access_token"]}
    assert await list_status(portsip_server, session, tokens["access_token"]) == 401


async def test_revoking_the_static_token_is_a_no_op(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, _ = await post(
        portsip_server,
        session,
        "/auth/sign_out",
        headers={"Authorization": "Bearer demo-token"},
    )

    assert status == 200
    assert portsip_server.revoked_tokens == set()
    assert await list_status(portsip_server, session, "demo-token") == 200


async def test_json_sign_in_refresh_and_sign_out(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, tokens = await post(
        portsip_server,
        session,
        "/auth/sign_in",
        json={"username": "admin", "password": "pw", "domain": "any.example"},
    )
    refreshed = await post(
        portsip_server,
        session,
        "/auth/refresh_token",
        json={"refresh_token": tokens["refresh_token"]},
    )
    bearer = {"Authorization": f"Bearer {refreshed[1]['access_token']}"}
    signed_out = await post(portsip_server, session, "/auth/sign_out", headers=bearer)

    assert status == 200
    assert refreshed[0] == 200
    assert signed_out == (200, {})
    assert (
        await list_status(portsip_server, session, refreshed[1]["access_token"]) == 401
    )


async def test_two_factor_users_get_a_challenge(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, body = await post(
        portsip_server,
        session,
        "/auth/sign_in",
        json={"username": "alice", "password": "pw2"},
    )

    assert status == 200
    assert body["two_factor_enabled"] is True
    assert await list_status(portsip_server, session, body["token"]) == 401


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"refresh_token": 5}'])
async def test_malformed_json_auth_bodies_are_400(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession, body: bytes
) -> None:
    sign_in = await post(portsip_server, session, "/auth/sign_in", data=body)
    refresh = await post(portsip_server, session, "/auth/refresh_token", data=body)

    assert (sign_in[0], refresh[0]) == (400, 400)


@pytest.mark.portsip_server(domains={"tenant.example"})
async def test_domains_restrict_tenant_logins(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    good = await post(
        portsip_server,
        session,
        "/auth/sign_in",
        json={"username": "admin", "password": "pw", "domain": "tenant.example"},
    )
    bad = await post(
        portsip_server,
        session,
        "/auth/sign_in",
        json={"username": "admin", "password": "pw", "domain": "other.example"},
    )

    assert (good[0], bad[0]) == (200, 400)
