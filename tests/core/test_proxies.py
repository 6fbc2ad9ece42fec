"""Proxies, against a real forward proxy on loopback (pproxy, run as a subprocess)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from aiohttp import web

from external_messages_async import ExternalMessagesClient, RetryPolicy
from external_messages_async.errors import (
    APIConnectionError,
    APIStatusError,
    ExternalMessagesError,
)
from external_messages_async.testing import FakePortSIPServer

USER, PASSWORD = "alice", "pr0xy-s3cret"
NO_RETRY = RetryPolicy(max_retries=0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.define
class Proxy:
    """A pproxy process and the connections it reported (``client -> target``)."""

    url: str
    lines: list[str] = attrs.field(factory=list)
    changed: asyncio.Condition = attrs.field(factory=asyncio.Condition)

    def with_password(self, password: str) -> str:
        return self.url.replace("://", f"://{USER}:{password}@")

    async def saw(self, target: str) -> None:
        """Wait until the proxy reports a connection to ``target`` (host:port)."""
        async with self.changed:
            await self.changed.wait_for(
                lambda: any(line.endswith(f"-> {target}") for line in self.lines)
            )


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-u", "-m", "pproxy",
        "-l", f"http://127.0.0.1:{port}#{USER}:{PASSWORD}",
        "--auth", "0",  # ask for the password on every connection
        "-v",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    found = Proxy(url=f"http://127.0.0.1:{port}")
    started = asyncio.Event()

    async def read() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode(errors="replace").strip()
            if text.startswith("Serving on"):
                started.set()
            async with found.changed:
                found.lines.append(text)
                found.changed.notify_all()

    reader = asyncio.create_task(read())
    try:
        await asyncio.wait_for(started.wait(), timeout=30)
        yield found
    finally:
        process.terminate()
        await process.wait()
        await reader


@pytest.fixture(scope="module")
def ca() -> Any:
    import trustme  # in the test group

    return trustme.CA()


@pytest.fixture
async def tls_pbx(ca: Any) -> AsyncIterator[int]:
    """A TLS endpoint serving one page, for CONNECT tunnels."""

    async def page(request: web.Request) -> web.StreamResponse:
        return web.json_response({"count": 1, "items": [{"id": "via-tunnel"}]})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    app = web.Application()
    app.router.add_get("/api/external_messages", page)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def test_plain_http_goes_through_the_proxy(proxy: Proxy) -> None:
    async with FakePortSIPServer(5) as pbx:
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", proxy=proxy.with_password(PASSWORD)
        ) as client:
            page = await client.get_page(top=5)

        await asyncio.wait_for(proxy.saw(f"127.0.0.1:{pbx.port}"), timeout=30)

    assert len(page.items) == 5


async def test_https_goes_through_a_connect_tunnel(
    proxy: Proxy, tls_pbx: int, ca: Any
) -> None:
    trust = ssl.create_default_context()
    ca.configure_trust(trust)

    async with ExternalMessagesClient(
        f"https://127.0.0.1:{tls_pbx}",
        token="t",
        ssl=trust,
        proxy=proxy.with_password(PASSWORD),
    ) as client:
        page = await client.get_page()
    await asyncio.wait_for(proxy.saw(f"127.0.0.1:{tls_pbx}"), timeout=30)

    assert [m.id for m in page.items] == ["via-tunnel"]


async def test_trust_env_honours_http_proxy(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.with_password(PASSWORD))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with FakePortSIPServer(3) as pbx:
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", trust_env=True
        ) as client:
            page = await client.get_page(top=3)

        await asyncio.wait_for(proxy.saw(f"127.0.0.1:{pbx.port}"), timeout=30)

    assert len(page.items) == 3


@pytest.mark.parametrize(
    ("trust_env", "no_proxy"), [(False, None), (True, "127.0.0.1")]
)
async def test_the_environment_is_ignored_by_default_and_no_proxy_is_honoured(
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
    trust_env: bool,
    no_proxy: str | None,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.with_password(PASSWORD))
    if no_proxy is not None:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    async with FakePortSIPServer(3) as pbx:
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", trust_env=trust_env
        ) as client:
            page = await client.get_page(top=3)

        # The request is answered, so a connection through the proxy would
        # already be in its log.
        assert not any(str(pbx.port) in line for line in proxy.lines)

    assert len(page.items) == 3


@pytest.mark.parametrize(
    ("scheme", "error"),
    [("http", APIStatusError), ("https", APIConnectionError)],
)
async def test_a_refused_proxy_password_is_never_shown(
    proxy: Proxy,
    tls_pbx: int,
    scheme: str,
    error: type[ExternalMessagesError],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plain request gets the proxy's 407; a CONNECT refused is a connection error."""
    wrong = "wr0ng-pr0xy-pw"
    caplog.set_level(logging.DEBUG, logger="external_messages_async")
    async with FakePortSIPServer(1) as pbx:
        target = pbx.url if scheme == "http" else f"https://127.0.0.1:{tls_pbx}"
        async with ExternalMessagesClient(
            target,
            token="demo-token",
            ssl=False if scheme == "https" else None,
            proxy=proxy.with_password(wrong),
            retry=NO_RETRY,
        ) as client:
            with pytest.raises(error) as info:
                await client.get_page()

    shown = [str(info.value), repr(vars(info.value)), caplog.text, repr(client)]
    assert "407" in str(info.value)
    assert not any(wrong in text for text in shown)
    assert not any(USER in text for text in shown)
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (3128, TypeError),
        ("socks5://alice:hunter2@proxy:1080", ValueError),
        ("proxy.example.com:3128", ValueError),
    ],
)
def test_a_bad_proxy_option_fails_at_construction_without_showing_it(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="proxy") as info:
        ExternalMessagesClient("https://pbx.example.com", token="t", proxy=value)  # type: ignore[arg-type]  # wrong on purpose

    assert "hunter2" not in str(info.value)
