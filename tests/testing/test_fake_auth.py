"""TokenStore: login decisions, expiry, refresh rotation and revocation."""

from __future__ import annotations

import pytest

from external_messages_async.testing._auth import PORTSIP_CLIENT_ID, TokenStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> TokenStore:
    return TokenStore(
        static_token="static",
        users={"admin": "pw", "alice": "pw2"},
        domains={"tenant.example.com"},
        two_factor_users={"alice"},
        lifetime=10.5,
        refresh_lifetime=100.0,
        clock=clock,
    )


def form(**overrides: str) -> dict[str, str]:
    fields = {
        "grant_type": "password",
        "username": "admin",
        "password": "pw",
        "scope": "all",
        "client_id": PORTSIP_CLIENT_ID,
    }
    fields.update(overrides)
    return fields


def test_password_grant_issues_a_bearer_token_set(store: TokenStore) -> None:
    status, code, payload = store.password_grant(form())

    assert (status, code) == (200, "")
    assert set(payload) == {"access_token", "expires_in", "refresh_token", "token_type"}
    assert payload["expires_in"] == 11
    assert payload["token_type"] == "Bearer"
    assert store.is_valid(payload["access_token"])
    assert store.login_count == 1


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"password": "wrong"}, "UNAUTHORIZED", "Login failed, authentication error"),
        ({"username": "bob"}, "UNAUTHORIZED", "Login failed, authentication error"),
        ({"domain": "other.example.com"}, "UNAUTHORIZED", "Login failed"),
        ({"client_id": "nope"}, "VALIDATE_FAILED", "client_id must be"),
        ({"grant_type": "magic"}, "VALIDATE_FAILED", "grant_type must be"),
        ({"scope": "some"}, "VALIDATE_FAILED", "scope must be all"),
    ],
)
def test_password_grant_rejections_are_400(
    store: TokenStore, overrides: dict[str, str], code: str, message: str
) -> None:
    status, got_code, got_message = store.password_grant(form(**overrides))

    assert (status, got_code) == (400, code)
    assert got_message.startswith(message)
    assert store.login_count == 0


def test_known_tenant_domain_is_accepted(store: TokenStore) -> None:
    assert store.password_grant(form(domain="tenant.example.com"))[0] == 200


def test_access_tokens_expire_with_the_clock(store: TokenStore, clock: Clock) -> None:
    token = store.password_grant(form())[2]["access_token"]

    clock.now += 10.5

    assert not store.is_valid(token)
    assert store.is_valid("static")
    assert not store.is_valid("made-up")


def test_refresh_rotates_the_refresh_token(store: TokenStore) -> None:
    first = store.password_grant(form())[2]

    status, _, second = store.password_grant(
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": PORTSIP_CLIENT_ID,
        }
    )

    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert store.refresh(first["refresh_token"])[:2] == (400, "UNAUTHORIZED")
    assert store.refresh_count == 1


def test_expired_or_bogus_refresh_tokens_are_rejected(
    store: TokenStore, clock: Clock
) -> None:
    refresh = store.password_grant(form())[2]["refresh_token"]
    clock.now += 100

    assert store.refresh(refresh)[0] == 400
    assert store.refresh(None)[0] == 400
    assert store.refresh_count == 0


def test_revoke_kills_the_access_token_and_its_refresh_token(store: TokenStore) -> None:
    tokens = store.password_grant(form())[2]

    store.revoke(tokens["access_token"])

    assert not store.is_valid(tokens["access_token"])
    assert store.refresh(tokens["refresh_token"])[0] == 400
    assert store.revoked_tokens == {tokens["access_token"]}


def test_expire_all_keeps_refresh_tokens_usable(store: TokenStore) -> None:
    tokens = store.password_grant(form())[2]

    store.expire_all()

    assert not store.is_valid(tokens["access_token"])
    assert store.refresh(tokens["refresh_token"])[0] == 200


def test_sign_in_answers_tokens_or_a_two_factor_challenge(store: TokenStore) -> None:
    plain = store.sign_in({"username": "admin", "password": "pw"})
    challenged = store.sign_in({"username": "alice", "password": "pw2"})

    assert plain[0] == 200
    assert "access_token" in plain[2]
    assert challenged[0] == 200
    assert challenged[2]["two_factor_enabled"] is True
    assert isinstance(challenged[2]["token"], str)


@pytest.mark.parametrize(
    "body", [None, [], {"username": "admin"}, {"username": 1, "password": "pw"}]
)
def test_sign_in_rejects_malformed_bodies(store: TokenStore, body: object) -> None:
    assert store.sign_in(body)[:2] == (400, "UNAUTHORIZED")


def test_without_a_static_token_only_issued_tokens_are_valid(clock: Clock) -> None:
    store = TokenStore(
        static_token=None,
        users={},
        domains=None,
        two_factor_users=(),
        lifetime=1,
        refresh_lifetime=1,
        clock=clock,
    )

    assert not store.is_valid("anything")
