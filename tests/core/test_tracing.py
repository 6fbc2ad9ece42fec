"""OpenTelemetry: one span per logical call, HTTP attempts as its children."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from external_messages_async import ExternalMessagesClient, _tracing
from external_messages_async._tracing import operation_of_post, page_attributes
from external_messages_async.errors import NotFoundError
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import FAST_RETRY

USER, PASSWORD = "alice", "correct-horse-battery"


@pytest.fixture(scope="module")
def provider() -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # set by an earlier module
        return current
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    return provider


@pytest.fixture
def spans(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    # Processors cannot be removed from a provider: a shut-down one drops spans.
    processor.shutdown()


def _by_name(finished: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name.startswith(prefix)]


async def test_a_page_retried_twice_is_one_call_span_with_three_attempt_spans(
    provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    async with FakePortSIPServer(20) as pbx:
        pbx.script([ScriptedResponse(status=503), ScriptedResponse(status=502)])
        async with ExternalMessagesClient(
            pbx.url,
            token="demo-token",
            retry=FAST_RETRY,
            trace_configs=[create_trace_config(tracer_provider=provider)],
        ) as client:
            await client.get_page(skip=5, top=10)

    finished = spans.get_finished_spans()
    (call,) = _by_name(finished, "external_messages page")
    attempts = [s for s in finished if s.parent is not None and s is not call]
    assert len(attempts) == 3
    assert {s.parent.span_id for s in attempts if s.parent} == {call.context.span_id}
    assert {s.context.trace_id for s in attempts} == {call.context.trace_id}
    assert call.attributes is not None
    assert call.attributes["external_messages.skip"] == 5
    assert call.attributes["external_messages.top"] == 10
    assert call.attributes["external_messages.attempts"] == 3
    assert call.attributes["http.response.status_code"] == 200


async def test_login_and_get_are_spans_and_no_attribute_holds_a_secret(
    provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    async with FakePortSIPServer(3, users={USER: PASSWORD}) as pbx:
        wanted = pbx.messages[0]["id"]
        async with ExternalMessagesClient(
            pbx.url,
            username=USER,
            password=PASSWORD,
            retry=FAST_RETRY,
            trace_configs=[create_trace_config(tracer_provider=provider)],
        ) as client:
            await client.get(wanted)
            await client.get_page(top=1, filter="receiver eq '+15550001111'")
        tokens = {
            r.headers.get("Authorization", "").removeprefix("Bearer ")
            for r in pbx.requests
        } - {""}

    finished = spans.get_finished_spans()
    names = [s.name for s in finished if s.name.startswith("external_messages")]
    assert names == [
        "external_messages login",
        "external_messages get",
        "external_messages page",
        "external_messages revoke",
    ]
    values = [str(v) for s in finished for v in (s.attributes or {}).values()]
    secrets = {PASSWORD, *tokens}
    assert tokens
    assert not [v for v in values for secret in secrets if secret in v]


async def test_a_failed_call_span_records_attempts_and_the_status(
    spans: InMemorySpanExporter,
) -> None:
    async with (
        FakePortSIPServer(3) as pbx,
        ExternalMessagesClient(pbx.url, token="demo-token", retry=FAST_RETRY) as client,
    ):
        with pytest.raises(NotFoundError):
            await client.get("missing")

    (call,) = _by_name(spans.get_finished_spans(), "external_messages get")
    assert call.attributes is not None
    assert call.attributes["external_messages.attempts"] == 1
    assert call.attributes["http.response.status_code"] == 404
    assert call.status.status_code is trace.StatusCode.ERROR


def test_span_names_and_attributes_are_pure_decisions() -> None:
    assert page_attributes("GET", "/api/x", {"skip": "0", "top": "100"}) == (
        "page",
        {
            "http.request.method": "GET",
            "url.path": "/api/x",
            "external_messages.skip": 0,
            "external_messages.top": 100,
        },
    )
    assert page_attributes("GET", "/api/x/1", None)[0] == "get"
    assert operation_of_post("login/oauth/token", {"grant_type": "password"}, None) == (
        "login"
    )
    assert operation_of_post(
        "login/oauth/token", {"grant_type": "refresh_token"}, None
    ) == ("refresh")
    assert operation_of_post("auth/refresh_token", None, {"refresh_token": "r"}) == (
        "refresh"
    )
    assert operation_of_post("auth/sign_out", None, None) == "revoke"


def test_a_page_attribute_that_is_not_a_number_is_left_out() -> None:
    assert page_attributes("GET", "/api/x", {"skip": "-1", "top": "5"})[1] == {
        "http.request.method": "GET",
        "url.path": "/api/x",
        "external_messages.top": 5,
    }


def test_a_json_body_with_a_refresh_token_names_a_refresh() -> None:
    assert operation_of_post("auth/sign_in", None, {"refresh_token": "r"}) == "refresh"
    assert operation_of_post("auth/sign_in", None, {"username": "u"}) == "login"


def test_without_opentelemetry_nothing_is_imported_and_calls_work() -> None:
    """Run in a fresh interpreter where ``import opentelemetry`` fails."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # as if the extra were not installed
        from external_messages_async import ExternalMessagesClient
        from external_messages_async.testing import FakePortSIPServer

        async def main():
            async with FakePortSIPServer(3) as pbx:
                async with ExternalMessagesClient(pbx.url, token="demo-token") as c:
                    page = await c.get_page(top=2)
            return len(page.items)

        got = asyncio.run(main())
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        print(got, loaded)
        """
    )

    assert _python(script) == "2 ['opentelemetry']"


def test_importing_the_package_imports_no_opentelemetry() -> None:
    script = (
        "import sys, external_messages_async;"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )

    assert _python(script) == "False"


def _python(script: str) -> str:
    """Run ``script`` in a fresh interpreter; return what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


async def test_without_opentelemetry_calls_run_without_spans(
    monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter
) -> None:
    monkeypatch.setattr(_tracing, "_trace", _tracing._UNSET)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # type: ignore[arg-type]  # None in sys.modules makes the import fail, on purpose
    async with (
        FakePortSIPServer(3) as pbx,
        ExternalMessagesClient(pbx.url, token="demo-token") as client,
    ):
        page = await client.get_page(top=2)

    assert _tracing._api() is None
    assert len(page.items) == 2
    assert spans.get_finished_spans() == ()


async def test_a_401_renewal_is_a_refresh_span(spans: InMemorySpanExporter) -> None:
    async with (
        FakePortSIPServer(3, users={USER: PASSWORD}) as pbx,
        ExternalMessagesClient(
            pbx.url, username=USER, password=PASSWORD, retry=FAST_RETRY
        ) as client,
    ):
        await client.get_page(top=1)
        pbx.expire_tokens()
        await client.get_page(top=1)

    names = [s.name for s in spans.get_finished_spans()]
    assert names == [
        "external_messages login",
        "external_messages page",
        "external_messages refresh",
        "external_messages page",
        "external_messages revoke",
    ]
    assert pbx.refresh_count == 1


async def test_trace_configs_reach_the_session_the_client_makes() -> None:
    started: list[str] = []

    async def on_request_start(
        session: object, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        started.append(params.url.path)

    hooks = aiohttp.TraceConfig()
    hooks.on_request_start.append(on_request_start)
    async with (
        FakePortSIPServer(3) as pbx,
        ExternalMessagesClient(
            pbx.url, token="demo-token", trace_configs=[hooks]
        ) as client,
    ):
        await client.get_page(top=1)

    assert started == ["/api/external_messages"]
