"""The pure half of password login: requests, answers, refresh timing."""

from __future__ import annotations

import orjson
import pytest

from external_messages_async import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    PasswordAuth,
    ResponseDecodeError,
    ServerError,
    TokenProviderAuth,
)
from external_messages_async._auth import RawResponse
from external_messages_async._login import (
    CLIENT_ID,
    TokenRequest,
    TokenSet,
    is_refused,
    password_request,
    read_token_answer,
    refresh_request,
    refresh_window,
    sign_out_path,
)

PASSWORD = "pw-decisions-S3cret"
ACCESS = "acc-decisions-S3cret"
REFRESH = "ref-decisions-S3cret"


def answer(status: int, body: object) -> RawResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return RawResponse(status=status, headers={}, body=raw)


def refusal(code: str = "UNAUTHORIZED", status: int = 400) -> RawResponse:
    message = "Login failed, authentication error"
    return answer(status, {"errors": [{"code": code, "message": message}]})


TOKENS = {
    "access_token": ACCESS,
    "refresh_token": REFRESH,
    "expires_in": 3600,
    "token_type": "Bearer",
}


# -- requests ------------------------------------------------------------------
def test_oauth_login_is_a_password_grant_with_the_fixed_client_id() -> None:
    request = password_request(
        "oauth", username="alice", password=PASSWORD, domain=None
    )

    assert request.path == "login/oauth/token"
    assert request.json is None
    assert request.form == {
        "grant_type": "password",
        "username": "alice",
        "password": PASSWORD,
        "scope": "all",
        "client_id": CLIENT_ID,
    }


def test_domain_is_sent_only_when_given() -> None:
    oauth = password_request(
        "oauth", username="alice", password=PASSWORD, domain="t.example"
    )
    json_flow = password_request(
        "json", username="alice", password=PASSWORD, domain=None
    )

    assert oauth.form is not None
    assert oauth.form["domain"] == "t.example"
    assert json_flow.json == {"username": "alice", "password": PASSWORD}


def test_json_login_posts_credentials_to_sign_in() -> None:
    request = password_request(
        "json", username="alice", password=PASSWORD, domain="t.example"
    )

    assert request.path == "auth/sign_in"
    assert request.form is None
    assert request.json == {
        "username": "alice",
        "password": PASSWORD,
        "domain": "t.example",
    }


def test_refresh_requests_of_both_flows() -> None:
    oauth = refresh_request("oauth", REFRESH)
    json_flow = refresh_request("json", REFRESH)

    assert oauth == TokenRequest(
        "login/oauth/token",
        form={
            "grant_type": "refresh_token",
            "refresh_token": REFRESH,
            "client_id": CLIENT_ID,
        },
    )
    assert json_flow == TokenRequest(
        "auth/refresh_token", json={"refresh_token": REFRESH}
    )


def test_each_flow_revokes_at_its_own_endpoint() -> None:
    assert sign_out_path("oauth") == "login/oauth/revoke"
    assert sign_out_path("json") == "auth/sign_out"


def test_request_repr_hides_the_body() -> None:
    request = password_request(
        "oauth", username="alice", password=PASSWORD, domain=None
    )

    assert PASSWORD not in repr(request)
    assert PASSWORD not in repr(refresh_request("json", PASSWORD))


# -- refresh timing -------------------------------------------------------------
@pytest.mark.parametrize(
    ("lifetime", "window"),
    [(3600, 60.0), (1800, 60.0), (600, 60.0), (60, 6.0), (1, 0.1)],
)
def test_advisory_window_is_a_minute_or_a_tenth_of_short_lifetimes(
    lifetime: float, window: float
) -> None:
    assert refresh_window(lifetime) == pytest.approx(window)


def test_token_is_due_from_the_start_of_the_window() -> None:
    tokens = TokenSet(
        access_token=ACCESS, refresh_token=None, expires_in=100.0, obtained_at=0
    )

    assert not tokens.due(89.9)
    assert tokens.due(90.0)
    assert tokens.due(150.0)


def test_token_without_lifetime_is_never_due() -> None:
    tokens = TokenSet(
        access_token=ACCESS, refresh_token=None, expires_in=None, obtained_at=0
    )

    assert not tokens.due(1e9)


def test_token_set_repr_hides_both_tokens() -> None:
    tokens = TokenSet(
        access_token=ACCESS, refresh_token=REFRESH, expires_in=1.0, obtained_at=0
    )

    assert ACCESS not in repr(tokens)
    assert REFRESH not in repr(tokens)


# -- answers ----------------------------------------------------------------------
def test_token_answer_is_read_and_stamped() -> None:
    tokens = read_token_answer(answer(200, TOKENS), path="login/oauth/token", now=5.0)

    assert tokens == TokenSet(
        access_token=ACCESS, refresh_token=REFRESH, expires_in=3600.0, obtained_at=5.0
    )


@pytest.mark.parametrize("expires_in", [None, "3600", True, 0, -5, float("inf")])
def test_unusable_lifetime_means_no_lifetime(expires_in: object) -> None:
    body = {**TOKENS, "expires_in": expires_in}

    tokens = read_token_answer(answer(200, body), path="p", now=0)

    assert tokens.expires_in is None


@pytest.mark.parametrize("refresh", [None, "", 7])
def test_unusable_refresh_token_means_none(refresh: object) -> None:
    body = {**TOKENS, "refresh_token": refresh}

    assert read_token_answer(answer(200, body), path="p", now=0).refresh_token is None


def test_refused_login_raises_authentication_error_with_portsips_message() -> None:
    with pytest.raises(AuthenticationError) as caught:
        read_token_answer(refusal(), path="login/oauth/token", now=0)

    assert "Login failed, authentication error" in str(caught.value)
    assert caught.value.status == 400
    assert caught.value.code == "UNAUTHORIZED"
    assert caught.value.path == "login/oauth/token"


def test_401_from_a_token_endpoint_is_a_refusal() -> None:
    with pytest.raises(AuthenticationError) as caught:
        read_token_answer(answer(401, b""), path="auth/sign_in", now=0)

    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (refusal(code="VALIDATE_FAILED"), BadRequestError),
        (answer(500, b"<html>proxy</html>"), ServerError),
        (answer(418, b""), APIStatusError),
    ],
)
def test_other_error_answers_map_by_status(
    response: RawResponse, error: type[APIStatusError]
) -> None:
    with pytest.raises(APIStatusError) as caught:
        read_token_answer(response, path="p", now=0)

    assert type(caught.value) is error


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", orjson.dumps({"access_token": ""}), orjson.dumps({})]
)
def test_answer_without_access_token_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        read_token_answer(answer(200, body), path="p", now=0)

    assert caught.value.path == "$.access_token"
    assert caught.value.body == ""


def test_decode_error_never_quotes_the_tokens() -> None:
    body = {"access_token": None, "refresh_token": REFRESH, "note": ACCESS}

    with pytest.raises(ResponseDecodeError) as caught:
        read_token_answer(answer(200, body), path="p", now=0)

    assert REFRESH not in str(caught.value)
    assert ACCESS not in str(caught.value)


def test_two_factor_answer_asks_for_a_token_instead() -> None:
    challenge = "2fa-session-S3cret"

    with pytest.raises(AuthenticationError) as caught:
        read_token_answer(
            answer(200, {"two_factor_enabled": True, "token": challenge}),
            path="auth/sign_in",
            now=0,
        )

    assert "two-factor" in str(caught.value)
    assert "token=" in str(caught.value)
    assert challenge not in str(caught.value)


@pytest.mark.parametrize(
    ("response", "refused"),
    [
        (refusal(), True),
        (answer(401, b""), True),
        (refusal(code="VALIDATE_FAILED"), False),
        (answer(400, b"oops"), False),
        (answer(500, b""), False),
        (answer(200, TOKENS), False),
    ],
)
def test_is_refused_means_400_unauthorized_or_401(
    response: RawResponse, refused: bool
) -> None:
    assert is_refused(response) is refused


# -- construction -------------------------------------------------------------------
def test_password_auth_repr_shows_the_user_but_not_the_password() -> None:
    auth = PasswordAuth(username="alice", password=PASSWORD, domain="t.example")

    assert "alice" in repr(auth)
    assert PASSWORD not in repr(auth)
    assert PASSWORD not in str(auth)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"username": 1, "password": PASSWORD}, TypeError),
        ({"username": "alice", "password": b"pw"}, TypeError),
        ({"username": "", "password": PASSWORD}, ValueError),
        ({"username": "alice", "password": ""}, ValueError),
        ({"username": "alice", "password": PASSWORD, "domain": ""}, ValueError),
        ({"username": "alice", "password": PASSWORD, "flow": "saml"}, ValueError),
    ],
)
def test_password_auth_checks_its_options(
    options: dict[str, object], error: type
) -> None:
    with pytest.raises(error) as caught:
        PasswordAuth(**options)  # type: ignore[arg-type]  # wrong on purpose

    assert PASSWORD not in str(caught.value)


def test_token_provider_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        TokenProviderAuth("a-token")  # type: ignore[arg-type]  # wrong on purpose
