"""Hostile input and secrets: ids, filters, redirects, credentials, TLS."""

from __future__ import annotations

import inspect
import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from external_messages_async import (
    ExternalMessagesClient,
    PasswordAuth,
    RetryPolicy,
    TokenAuth,
    TokenProviderAuth,
    build_filter,
    quote_literal,
)
from external_messages_async._auth import RawResponse
from external_messages_async._login import TokenSet, password_request
from external_messages_async._urls import encode_segment
from external_messages_async.cli._app import cli
from external_messages_async.errors import (
    APIConnectionError,
    APIStatusError,
    ExternalMessagesError,
    NotFoundError,
)
from external_messages_async.testing import FakePortSIPServer, generate_messages

from .conftest import PASSWORD, TOKEN, USERNAME, SecretWatch, client_for

RetryNone = RetryPolicy(max_retries=0)

HOSTILE_IDS = [
    "a/b",
    "..",
    ".",
    "../external_messages",
    "../../login/oauth/token",
    "x?top=1&skip=0",
    "x#frag",
    "100%",
    "%2e%2e",
    "%2F",
    "with space",
    "ünïcødé-✉-名前",
    "a\\b",
    "?",
    "#",
    "/",
    "id;param=1",
    "line\nbreak",
]


# -- ids ---------------------------------------------------------------------


@given(st.text(min_size=1))
@settings(max_examples=300, deadline=None)
def test_any_id_encodes_to_one_segment_that_decodes_back(message_id: str) -> None:
    segment = encode_segment(message_id)

    assert urllib.parse.unquote(segment, errors="surrogatepass") == message_id
    assert set(segment) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%"
    )
    assert segment not in (".", "..")


@pytest.mark.parametrize("message_id", HOSTILE_IDS)
async def test_hostile_id_reaches_only_its_own_item_url(
    pbx: FakePortSIPServer, message_id: str
) -> None:
    async with client_for(pbx.url) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get(message_id)

    [request] = pbx.requests
    prefix = "/api/external_messages/"
    assert caught.value.path == request.raw_path
    assert request.raw_path.startswith(prefix)
    segment = request.raw_path[len(prefix) :]
    assert "/" not in segment
    assert urllib.parse.unquote(segment) == message_id
    assert request.query == {}
    assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")
    assert "\n" not in str(caught.value)  # the raw path: no line breaks in logs


async def test_hostile_ids_that_exist_are_fetched_as_themselves(
    pbx: FakePortSIPServer,
) -> None:
    items = generate_messages(len(HOSTILE_IDS), seed=3)
    for item, message_id in zip(items, HOSTILE_IDS, strict=True):
        item["id"] = message_id
    pbx.insert_messages(items)

    async with client_for(pbx.url) as client:
        fetched = await client.get_many(HOSTILE_IDS, concurrency=4)

    assert [m.id for m in fetched] == HOSTILE_IDS


# -- filters -----------------------------------------------------------------

INJECTION = "x' or 'a' eq 'a"
MATCH_ALL = "x' or msg_type ne 'x"


async def test_quoted_filter_value_matches_nothing_instead_of_everything(
    pbx: FakePortSIPServer,
) -> None:
    async with client_for(pbx.url) as client:
        built = await client.count(filter=build_filter(msg_type=INJECTION))
        extra = await client.count(
            filter=build_filter(extra=f"sender eq {quote_literal(INJECTION)}")
        )
        escaped = await client.count(filter=build_filter(msg_type=MATCH_ALL))
        naive = await client.count(filter=f"msg_type eq '{MATCH_ALL}'")

    assert (built, extra, escaped) == (0, 0, 0)
    # What the escaping prevents: pasted in unquoted, this one matches all.
    assert naive == 300


async def test_quoted_filter_value_with_quotes_finds_exactly_its_message(
    pbx: FakePortSIPServer,
) -> None:
    target = dict(pbx.messages[0], id="quoted", sender="O'Brien '' or 1")
    pbx.insert_messages([target])

    async with client_for(pbx.url) as client:
        found = [
            m.id
            async for m in client.list(
                filter=build_filter(
                    extra=f"sender eq {quote_literal(target['sender'])}"
                )
            )
        ]

    assert found == ["quoted"]


# -- redirects ---------------------------------------------------------------


class Origin:
    """A loopback server that records Authorization headers and answers with a handler."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        self.paths: list[str] = []
        self.answer: Callable[[web.Request], Any] = lambda r: web.json_response(
            {"count": 0, "items": []}
        )
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        self.paths.append(request.path)
        answer = self.answer(request)
        return await answer if inspect.isawaitable(answer) else answer

    async def __aenter__(self) -> Origin:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def origins() -> AsyncIterator[tuple[Origin, Origin]]:
    async with Origin() as first, Origin() as second:
        yield first, second


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_another_origin_is_not_followed(
    origins: tuple[Origin, Origin], status: int
) -> None:
    api, elsewhere = origins
    api.answer = lambda request: web.Response(
        status=status, headers={"Location": elsewhere.url + "/api/external_messages"}
    )

    async with client_for(api.url) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.get_page()

    assert caught.value.status == status
    assert "do not follow redirects" in str(caught.value)
    assert elsewhere.authorizations == []
    assert api.authorizations == [f"Bearer {TOKEN}"]


async def test_login_redirected_to_another_origin_sends_it_nothing(
    origins: tuple[Origin, Origin],
) -> None:
    api, elsewhere = origins
    api.answer = lambda request: web.Response(
        status=307, headers={"Location": elsewhere.url + "/api/login/oauth/token"}
    )

    async with client_for(api.url, username=USERNAME, password=PASSWORD) as client:
        with pytest.raises(ExternalMessagesError) as caught:
            await client.get_page()

    assert elsewhere.paths == []
    assert PASSWORD not in str(caught.value)


# -- secrets -----------------------------------------------------------------


def everything_about(error: BaseException) -> str:
    """Every text an exception shows: str, repr, args, attributes, causes."""
    parts = [str(error), repr(error), repr(error.args), repr(vars(error))]
    if error.__cause__ is not None:
        parts.append(everything_about(error.__cause__))
    if error.__context__ is not None and error.__context__ is not error.__cause__:
        parts.append(everything_about(error.__context__))
    return "\n".join(parts)


async def test_no_repr_shows_a_secret(secret_watch: SecretWatch) -> None:
    async def provider() -> str:
        return TOKEN

    shown = [
        repr(TokenAuth(TOKEN)),
        repr(PasswordAuth(username=USERNAME, password=PASSWORD)),
        repr(TokenProviderAuth(provider)),
        repr(TokenSet(access_token=TOKEN, refresh_token=PASSWORD, expires_in=1.0, obtained_at=0.0)),
        repr(password_request("oauth", username=USERNAME, password=PASSWORD, domain=None)),
        repr(password_request("json", username=USERNAME, password=PASSWORD, domain=None)),
        repr(RawResponse(status=200, headers={}, body=TOKEN.encode())),
        repr(ExternalMessagesClient("http://127.0.0.1:9", token=TOKEN)),
        repr(ExternalMessagesClient("http://127.0.0.1:9", username=USERNAME, password=PASSWORD)),
        repr(ExternalMessagesClient("http://127.0.0.1:9", username=USERNAME, password=PASSWORD)._http.auth),
    ]  # fmt: skip

    for text in shown:
        secret_watch.assert_clean(text, where="a repr")
    assert USERNAME in shown[1]


def echo(status: int) -> Callable[[web.Request], Any]:
    """A server that echoes what it got (body and Authorization) in an error."""

    async def answer(request: web.Request) -> web.StreamResponse:
        sent = (await request.read()).decode()
        text = f"{sent} {request.headers.get('Authorization')}"
        body = {"errors": [{"code": "ECHO", "message": text, "detail": text}]}
        return web.Response(
            status=status, body=orjson.dumps(body), content_type="application/json"
        )

    return answer


@pytest.mark.parametrize("status", [400, 401, 403, 500])
@pytest.mark.parametrize("flow", ["oauth", "json"])
async def test_login_error_echoing_the_password_does_not_carry_it(
    secret_watch: SecretWatch, status: int, flow: str
) -> None:
    async with Origin() as origin:
        origin.answer = echo(status)
        async with client_for(
            origin.url,
            username=USERNAME,
            password=PASSWORD,
            login_flow=flow,
            retry=RetryNone,
        ) as client:
            with pytest.raises(APIStatusError) as caught:
                await client.get_page()

    assert origin.paths  # the login was sent, and its answer echoed it
    secret_watch.assert_clean(everything_about(caught.value), where="the login error")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
async def test_api_error_echoing_the_token_does_not_carry_it(
    secret_watch: SecretWatch, status: int
) -> None:
    async with Origin() as origin:
        origin.answer = echo(status)
        async with client_for(origin.url, retry=RetryNone) as client:
            with pytest.raises(APIStatusError) as caught:
                await client.get("x")

    secret_watch.assert_clean(everything_about(caught.value), where="the API error")
    assert "[redacted]" in caught.value.body


async def test_password_login_refresh_and_revoke_log_no_secret(
    pbx: FakePortSIPServer,
    caplog: pytest.LogCaptureFixture,
    secret_watch: SecretWatch,
) -> None:
    """Log in, refresh after expiry, replay after a 401, revoke; the guard scans every record."""
    async with client_for(pbx.url, username=USERNAME, password=PASSWORD) as client:
        await client.get_page(top=5)
        pbx.expire_tokens()
        ids = [m.id async for m in client.list(page_size=50, concurrency=3)]

    assert len(ids) == 300
    assert (pbx.login_count, pbx.refresh_count) == (1, 1)
    assert len(pbx.revoked_tokens) == 1
    # The guard has something to scan: issued tokens and debug records.
    assert len(secret_watch.secrets) >= 6
    assert any(r.levelno == logging.DEBUG for r in caplog.records)


def test_cli_output_never_shows_the_token_or_password(
    secret_watch: SecretWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("URL", "TOKEN", "USERNAME", "PASSWORD", "DOMAIN"):
        monkeypatch.delenv(f"PORTSIP_{name}", raising=False)
    server = FakePortSIPServer(
        messages=30, seed=5, token=TOKEN, users={USERNAME: PASSWORD}
    )
    runner = CliRunner()
    outputs = []
    with server.run_in_thread() as running:
        for args in (
            ["list", "--url", running.url, "--token", TOKEN, "--limit", "3"],
            ["list", "--url", running.url, "--token", TOKEN + "-wrong"],
            ["get", "--url", running.url, "--token", TOKEN, "missing/../id"],
            ["list", "--url", running.url, "--username", USERNAME, "--password", PASSWORD, "--limit", "2"],
            ["list", "--url", running.url, "--username", USERNAME, "--password", PASSWORD + "-wrong"],
            ["list", "--url", "http://127.0.0.1:9", "--token", TOKEN],
        ):  # fmt: skip
            result = runner.invoke(cli, args)
            outputs.append((result.exit_code, result.output))

    secret_watch.add(TOKEN + "-wrong", PASSWORD + "-wrong")
    for _, output in outputs:
        secret_watch.assert_clean(output, where="CLI output")
    assert [code == 0 for code, _ in outputs] == [
        True,
        False,
        False,
        True,
        False,
        False,
    ]


# -- TLS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> Any:
    import trustme  # in the test group; imported here to keep collection light

    return trustme.CA()


@pytest.fixture
async def https_pbx(ca: Any) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    app = web.Application()
    app.router.add_get("/api/external_messages", _page)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def _page(request: web.Request) -> web.StreamResponse:
    return web.json_response({"count": 1, "items": [{"id": "tls"}]})


async def test_tls_verification_is_on_by_default(https_pbx: str) -> None:
    async with client_for(https_pbx, retry=RetryNone) as client:
        with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
            await client.get_page()


async def test_tls_with_the_pbx_ca_in_an_ssl_context_works(
    https_pbx: str, ca: Any
) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)

    async with client_for(https_pbx, ssl=context) as client:
        page = await client.get_page()

    assert [m.id for m in page.items] == ["tls"]


async def test_tls_opt_out_works_and_warns_once_per_client(
    https_pbx: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(https_pbx, ssl=False) as client:
        pages = [await client.get_page() for _ in range(3)]
    async with client_for(https_pbx, ssl=False) as other:
        await other.get_page()

    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "verification is disabled" in r.getMessage()
    ]
    assert [p.items[0].id for p in pages] == ["tls"] * 3
    assert len(warnings) == 2
