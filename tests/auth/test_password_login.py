"""Logging in with a password against a loopback token server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from external_messages_async import (
    AuthenticationError,
    ExternalMessagesClient,
    PasswordAuth,
)
from external_messages_async._login import CLIENT_ID
from tests.conftest import settle, wait_until

from .conftest import (
    LOGIN_FAILED,
    PASSWORD,
    TWO_FACTOR_USER,
    USERNAME,
    AuthServer,
    FakeClock,
    SecretWatch,
    ServerFactory,
)

ClientFor = Callable[..., ExternalMessagesClient]


def password_client(
    client_for: ClientFor,
    server: AuthServer,
    clock: FakeClock | None = None,
    **options: Any,
) -> ExternalMessagesClient:
    auth = PasswordAuth(
        username=options.pop("username", USERNAME),
        password=options.pop("password", PASSWORD),
        flow=options.pop("flow", "oauth"),
        domain=options.pop("domain", None),
        **({"clock": clock} if clock is not None else {}),
    )
    return client_for(server, auth=auth, **options)


# -- logging in -------------------------------------------------------------------
async def test_login_is_lazy_and_sends_the_documented_form(
    server: AuthServer, client_for: ClientFor
) -> None:
    client = client_for(
        server, username=USERNAME, password=PASSWORD, domain="t.example"
    )
    assert server.requests == []

    message = await client.get("m1")

    assert message.id == "m1"
    assert server.paths() == [
        "POST /api/login/oauth/token",
        "GET /api/external_messages/m1",
    ]
    assert server.requests[0].fields == {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
        "scope": "all",
        "client_id": CLIENT_ID,
        "domain": "t.example",
    }
    assert server.requests[0].authorization is None
    assert server.requests[1].authorization == f"Bearer {server.issued[0]}"
    await client.aclose()


async def test_fifty_concurrent_calls_on_a_new_client_log_in_once(
    server: AuthServer, client_for: ClientFor
) -> None:
    server.login_delay = 0.05
    client = client_for(server, username=USERNAME, password=PASSWORD)

    messages = await asyncio.gather(*(client.get(f"m{i}") for i in range(50)))

    assert [m.id for m in messages] == [f"m{i}" for i in range(50)]
    assert server.logins == 1
    assert server.paths().count("POST /api/login/oauth/token") == 1
    await client.aclose()


async def test_bad_credentials_raise_portsips_message_after_one_request(
    server: AuthServer, client_for: ClientFor, secret_watch: SecretWatch
) -> None:
    client = client_for(server, username=USERNAME, password="wrong-" + PASSWORD)
    secret_watch.add("wrong-" + PASSWORD)

    with pytest.raises(AuthenticationError) as caught:
        await client.get("m1")

    assert LOGIN_FAILED in str(caught.value)
    assert caught.value.code == "UNAUTHORIZED"
    assert server.paths() == ["POST /api/login/oauth/token"]
    secret_watch.assert_clean(str(caught.value), repr(caught.value), caught.value.body)
    await client.aclose()


async def test_concurrent_callers_share_one_refused_login(
    server: AuthServer, client_for: ClientFor
) -> None:
    """Fifty callers waiting on a refused login get its error, not fifty more tries."""
    server.login_delay = 0.05
    client = client_for(server, username=USERNAME, password="not-the-password")

    results = await asyncio.gather(
        *(client.get(f"m{i}") for i in range(50)), return_exceptions=True
    )

    assert all(isinstance(r, AuthenticationError) for r in results)
    assert server.paths() == ["POST /api/login/oauth/token"]
    await client.aclose()


async def test_a_later_call_tries_the_login_again(
    server: AuthServer, client_for: ClientFor
) -> None:
    """A refusal is not cached forever: the password may have been fixed server-side."""
    server.users[USERNAME] = "old"
    client = client_for(server, username=USERNAME, password=PASSWORD)
    with pytest.raises(AuthenticationError):
        await client.get("m1")
    server.users[USERNAME] = PASSWORD

    message = await client.get("m1")

    assert message.id == "m1"
    assert server.logins == 1
    await client.aclose()


async def test_a_cancelled_login_does_not_hand_its_waiters_an_older_error(
    server: AuthServer, client_for: ClientFor
) -> None:
    """The task left waiting logs in itself instead of raising the previous refusal."""
    server.users[USERNAME] = "old"
    client = client_for(server, username=USERNAME, password=PASSWORD)
    with pytest.raises(AuthenticationError):
        await client.get("m1")
    server.users[USERNAME] = PASSWORD
    server.login_gate.clear()
    holder = asyncio.create_task(client.get("m1"))
    await wait_until(lambda: server.paths().count("POST /api/login/oauth/token") == 2)
    waiter = asyncio.create_task(client.get("m2"))
    await settle()  # the waiter waits for the holder's login

    holder.cancel()
    server.login_gate.set()
    message = await waiter

    assert holder.cancelled()
    assert message.id == "m2"
    # The refused login, the cancelled one, and the waiter's own.
    assert server.paths().count("POST /api/login/oauth/token") == 3
    await client.aclose()


# -- refreshing --------------------------------------------------------------------
async def test_refresh_is_sent_inside_the_advisory_window_before_any_401(
    make_server: ServerFactory, client_for: ClientFor
) -> None:
    clock = FakeClock()
    server = await make_server(lifetime=100.0, clock=clock)
    client = password_client(client_for, server, clock)
    await client.get("m1")

    clock.advance(89.0)
    await client.get("m2")
    refreshes_before_window = server.refreshes
    clock.advance(2.0)
    await client.get("m3")

    assert refreshes_before_window == 0
    assert server.refreshes == 1
    assert server.unauthorized == 0
    refresh = server.requests[-2]
    assert refresh.fields == {
        "grant_type": "refresh_token",
        "refresh_token": server.issued[1],
        "client_id": CLIENT_ID,
    }
    assert server.requests[-1].authorization == f"Bearer {server.issued[2]}"
    await client.aclose()


async def test_refresh_keeps_the_new_refresh_token(
    make_server: ServerFactory, client_for: ClientFor
) -> None:
    clock = FakeClock()
    server = await make_server(lifetime=100.0, clock=clock)
    client = password_client(client_for, server, clock)
    await client.get("m1")

    for _ in range(3):
        clock.advance(95.0)
        await client.get("m1")

    assert server.refreshes == 3
    assert server.logins == 1
    refresh_tokens_sent = [
        r.fields["refresh_token"]
        for r in server.requests
        if "refresh_token" in r.fields
    ]
    assert refresh_tokens_sent == [server.issued[1], server.issued[3], server.issued[5]]
    await client.aclose()


async def test_fifty_calls_meeting_an_expired_token_refresh_once(
    make_server: ServerFactory, client_for: ClientFor
) -> None:
    clock = FakeClock()
    server = await make_server(lifetime=100.0, clock=clock)
    client = password_client(client_for, server, clock)
    await client.get("m0")
    clock.advance(150.0)

    messages = await asyncio.gather(*(client.get(f"m{i}") for i in range(50)))

    assert len(messages) == 50
    assert server.refreshes == 1
    assert server.logins == 1
    assert server.unauthorized == 0
    await client.aclose()


async def test_fifty_calls_refused_with_401_refresh_once_and_replay(
    server: AuthServer, client_for: ClientFor
) -> None:
    """Tokens the server dropped early: every call meets a 401, one refresh serves all."""
    client = client_for(server, username=USERNAME, password=PASSWORD)
    await client.get("m0")
    server.expire_all()

    messages = await asyncio.gather(*(client.get(f"m{i}") for i in range(50)))

    assert len(messages) == 50
    assert server.refreshes == 1
    assert server.logins == 1
    assert server.unauthorized == 50
    assert len(server.data_requests()) == 1 + 50 + 50
    await client.aclose()


async def test_refused_refresh_falls_back_to_a_fresh_login(
    make_server: ServerFactory, client_for: ClientFor
) -> None:
    clock = FakeClock()
    server = await make_server(lifetime=100.0, clock=clock)
    client = password_client(client_for, server, clock)
    await client.get("m1")
    server.refuse_refresh = True
    clock.advance(95.0)

    message = await client.get("m2")

    assert message.id == "m2"
    assert server.paths() == [
        "POST /api/login/oauth/token",
        "GET /api/external_messages/m1",
        "POST /api/login/oauth/token",
        "POST /api/login/oauth/token",
        "GET /api/external_messages/m2",
    ]
    assert server.requests[2].fields["grant_type"] == "refresh_token"
    assert server.requests[3].fields["grant_type"] == "password"
    assert server.logins == 2
    await client.aclose()


async def test_refresh_while_a_long_list_walk_runs(
    make_server: ServerFactory, client_for: ClientFor
) -> None:
    """Tokens live one second; the walk takes longer, and never stops for it."""
    clock = FakeClock()
    server = await make_server(lifetime=1.0, messages=48, clock=clock)
    server.on_page = lambda: clock.advance(0.25)
    client = password_client(client_for, server, clock)

    ids = [message.id async for message in client.list(page_size=4, concurrency=2)]

    assert ids == [f"m{i:04d}" for i in range(48)]
    assert server.logins == 1
    assert server.refreshes >= 1
    await client.aclose()


# -- 401 handling ------------------------------------------------------------------
async def test_second_401_after_the_replay_is_final(
    server: AuthServer, client_for: ClientFor, secret_watch: SecretWatch
) -> None:
    client = client_for(server, username=USERNAME, password=PASSWORD)
    await client.get("m1")
    server.always_401 = True

    with pytest.raises(AuthenticationError) as caught:
        await client.get("m2")

    assert caught.value.status == 401
    assert server.paths()[2:] == [
        "GET /api/external_messages/m2",
        "POST /api/login/oauth/token",
        "GET /api/external_messages/m2",
    ]
    secret_watch.assert_clean(str(caught.value), repr(caught.value))
    await client.aclose()


async def test_static_token_401_is_final_after_one_request(
    server: AuthServer, client_for: ClientFor
) -> None:
    client = client_for(server, token="tok-static-S3cret-unknown")
    server.static_tokens.add("tok-static-S3cret-other")

    with pytest.raises(AuthenticationError):
        await client.get("m1")

    assert server.paths() == ["GET /api/external_messages/m1"]
    await client.aclose()


# -- the JSON flow -------------------------------------------------------------------
async def test_json_flow_signs_in_refreshes_and_signs_out(
    make_server: ServerFactory, client_for: ClientFor
) -> None:
    clock = FakeClock()
    server = await make_server(lifetime=100.0, clock=clock)
    client = password_client(client_for, server, clock, flow="json", domain="t.example")
    await client.get("m1")
    clock.advance(95.0)
    await client.get("m2")

    await client.aclose()

    assert server.paths() == [
        "POST /api/auth/sign_in",
        "GET /api/external_messages/m1",
        "POST /api/auth/refresh_token",
        "GET /api/external_messages/m2",
        "POST /api/auth/sign_out",
    ]
    assert server.requests[0].fields == {
        "username": USERNAME,
        "password": PASSWORD,
        "domain": "t.example",
    }
    assert server.requests[2].fields == {"refresh_token": server.issued[1]}
    assert server.requests[4].authorization == f"Bearer {server.issued[2]}"


async def test_json_flow_chosen_by_the_client_keyword(
    server: AuthServer, client_for: ClientFor
) -> None:
    client = client_for(server, username=USERNAME, password=PASSWORD, login_flow="json")

    await client.get("m1")

    assert server.paths()[0] == "POST /api/auth/sign_in"
    await client.aclose()


async def test_two_factor_answer_raises_and_asks_for_a_token(
    server: AuthServer, client_for: ClientFor, secret_watch: SecretWatch
) -> None:
    client = client_for(
        server, username=TWO_FACTOR_USER, password=PASSWORD, login_flow="json"
    )

    with pytest.raises(AuthenticationError) as caught:
        await client.get("m1")

    assert "two-factor" in str(caught.value)
    assert "token=" in str(caught.value)
    assert server.paths() == ["POST /api/auth/sign_in"]
    secret_watch.assert_clean(str(caught.value), repr(caught.value))
    await client.aclose()


# -- closing ---------------------------------------------------------------------------
async def test_close_revokes_the_token_the_client_obtained(
    server: AuthServer, client_for: ClientFor
) -> None:
    client = client_for(server, username=USERNAME, password=PASSWORD)
    await client.get("m1")

    await client.aclose()

    assert server.paths()[-1] == "POST /api/login/oauth/revoke"
    assert server.revoked == [server.issued[0]]


async def test_close_never_revokes_a_token_the_user_passed(
    server: AuthServer, client_for: ClientFor
) -> None:
    server.static_tokens.add("tok-user-S3cret")
    client = client_for(server, token="tok-user-S3cret")
    await client.get("m1")

    await client.aclose()

    assert server.paths() == ["GET /api/external_messages/m1"]
    assert server.revoked == []


async def test_close_without_a_login_sends_nothing(
    server: AuthServer, client_for: ClientFor
) -> None:
    client = client_for(server, username=USERNAME, password=PASSWORD)

    await client.aclose()

    assert server.requests == []


@pytest.mark.parametrize("failure", ["status", "dropped"])
async def test_close_survives_a_failing_revoke(
    server: AuthServer, client_for: ClientFor, failure: str
) -> None:
    client = client_for(server, username=USERNAME, password=PASSWORD)
    await client.get("m1")
    server.revoke_status = 500
    server.drop_revoke = failure == "dropped"

    await client.aclose()

    assert client.closed
    assert server.paths()[-1] == "POST /api/login/oauth/revoke"


async def test_reprs_hold_no_secret(
    server: AuthServer, client_for: ClientFor, secret_watch: SecretWatch
) -> None:
    client = client_for(server, username=USERNAME, password=PASSWORD)
    await client.get("m1")

    shown = [repr(client), str(client), repr(client._http.auth), str(client._http.auth)]

    secret_watch.assert_clean(*shown)
    assert server.issued  # a token was issued, so the check above had one to look for
    await client.aclose()
