"""The status decides over the body-size cap: a long error body is cut, not refused."""

from __future__ import annotations

import pytest

from external_messages_async import ExternalMessagesClient
from external_messages_async.errors import (
    CUT_MARK,
    NotFoundError,
    ResponseDecodeError,
    ServerError,
    make_status_error,
)
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import FAST_RETRY

HTML = "<html><body>" + "Service Unavailable " * 1000 + "</body></html>"  # ~20 KB


async def test_a_long_503_body_is_retried_and_the_retry_succeeds() -> None:
    async with FakePortSIPServer(5) as pbx:
        pbx.script([ScriptedResponse(status=503, body=HTML, content_type="text/html")])
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", retry=FAST_RETRY, max_response_bytes=4096
        ) as client:
            page = await client.get_page(top=5)

    assert len(page.items) == 5
    assert len([r for r in pbx.requests if "external_messages" in r.path]) == 2


async def test_a_long_503_body_that_persists_ends_as_a_server_error_marked_cut() -> (
    None
):
    async with FakePortSIPServer(5) as pbx:
        pbx.script(
            [ScriptedResponse(status=503, body=HTML, content_type="text/html")] * 4
        )
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", retry=FAST_RETRY, max_response_bytes=4096
        ) as client:
            with pytest.raises(ServerError) as info:
                await client.get_page(top=5)

    assert info.value.status == 503
    assert info.value.body.startswith("<html><body>Service Unavailable")
    assert info.value.body.endswith(CUT_MARK)


async def test_a_long_404_body_is_a_not_found_error() -> None:
    async with FakePortSIPServer(5) as pbx:
        pbx.script([ScriptedResponse(status=404, body="x" * 10_000)])
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", retry=FAST_RETRY, max_response_bytes=1024
        ) as client:
            with pytest.raises(NotFoundError) as info:
                await client.get("anything")

    assert info.value.body.endswith(CUT_MARK)


async def test_a_long_success_body_is_still_refused() -> None:
    async with (
        FakePortSIPServer(50) as pbx,
        ExternalMessagesClient(
            pbx.url, token="demo-token", retry=FAST_RETRY, max_response_bytes=1024
        ) as client,
    ):
        with pytest.raises(ResponseDecodeError, match="exceeds the 1024-byte cap"):
            await client.get_page(top=50)


def test_an_error_body_that_fits_is_not_marked() -> None:
    error = make_status_error(
        method="GET", path="/api/x", status=503, headers={}, body=b"busy"
    )

    assert error.body == "busy"
