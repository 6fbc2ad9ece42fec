"""The constructor takes exactly one way to authenticate, and checks it at once."""

from __future__ import annotations

from typing import Any

import pytest

from external_messages_async import (
    Auth,
    ExternalMessagesClient,
    PasswordAuth,
    TokenAuth,
    TokenProviderAuth,
)

from .conftest import PASSWORD


async def provider() -> str:
    return "tok"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"token": "tok", "username": "alice", "password": PASSWORD},
        {"token": "tok", "token_provider": provider},
        {"token_provider": provider, "username": "alice", "password": PASSWORD},
        {"token": "tok", "auth": Auth()},
        {"auth": Auth(), "username": "alice", "password": PASSWORD},
        {"username": "alice"},
        {"password": PASSWORD},
        {"token": "tok", "password": PASSWORD},
        {"token": "tok", "domain": "t.example"},
    ],
    ids=[
        "none",
        "token+password",
        "token+provider",
        "provider+password",
        "token+auth",
        "auth+password",
        "username-only",
        "password-only",
        "token+stray-password",
        "token+stray-domain",
    ],
)
def test_anything_but_exactly_one_credential_is_a_value_error(
    options: dict[str, Any],
) -> None:
    with pytest.raises(
        ValueError, match=r"pass exactly one|go together|applies only"
    ) as caught:
        ExternalMessagesClient("http://127.0.0.1:9", **options)

    assert PASSWORD not in str(caught.value)


async def test_the_check_happens_before_any_request() -> None:
    """No server listens on port 9: a request would fail differently."""
    with pytest.raises(ValueError, match="exactly one"):
        ExternalMessagesClient(
            "http://127.0.0.1:9", token="tok", token_provider=provider
        )


@pytest.mark.parametrize(
    ("options", "strategy"),
    [
        ({"token": "tok"}, TokenAuth),
        ({"token_provider": provider}, TokenProviderAuth),
        ({"username": "alice", "password": PASSWORD}, PasswordAuth),
        ({"auth": Auth()}, Auth),
    ],
)
def test_each_credential_picks_its_strategy(
    options: dict[str, Any], strategy: type
) -> None:
    client = ExternalMessagesClient("http://127.0.0.1:9", **options)

    assert type(client._http.auth) is strategy


def test_password_options_reach_the_strategy() -> None:
    client = ExternalMessagesClient(
        "http://127.0.0.1:9",
        username="alice",
        password=PASSWORD,
        domain="t.example",
        login_flow="json",
    )

    auth = client._http.auth
    assert isinstance(auth, PasswordAuth)
    assert (auth.username, auth.password, auth.domain, auth.flow) == (
        "alice",
        PASSWORD,
        "t.example",
        "json",
    )
    assert PASSWORD not in repr(client)


def test_auth_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="auth must be an Auth"):
        ExternalMessagesClient("http://127.0.0.1:9", auth="tok")  # type: ignore[arg-type]  # wrong on purpose


def test_unknown_login_flow_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="flow"):
        ExternalMessagesClient(
            "http://127.0.0.1:9",
            username="alice",
            password=PASSWORD,
            login_flow="saml",  # type: ignore[arg-type]  # wrong on purpose
        )
