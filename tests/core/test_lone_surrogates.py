"""A lone UTF-16 surrogate escape is valid JSON: it must not sink a page."""

from __future__ import annotations

import json
import logging

import pytest

from external_messages_async import ExternalMessagesClient
from external_messages_async._converter import decode_json
from external_messages_async.errors import ResponseDecodeError
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import FAST_RETRY, message

CUT = b'{"count": 1, "items": [{"id": "a", "content": "cut emoji \\ud83d"}]}'


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    data = decode_json(CUT)

    assert data["items"][0]["content"] == "cut emoji \ufffd"


def test_a_lone_surrogate_logs_one_warning_naming_its_json_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = (
        b'{"items": [{"content": "fine"}, {"content": "\\udc00 x", '
        b'"reason": "\\ud800"}]}'
    )

    with caplog.at_level(logging.WARNING, logger="external_messages_async"):
        decode_json(body)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "$.items[1].content, $.items[1].reason" in warnings[0].getMessage()


def test_a_paired_surrogate_escape_is_an_ordinary_character() -> None:
    assert decode_json(b'{"c": "\\ud83d\\ude00"}') == {"c": "\U0001f600"}


def test_a_lone_surrogate_in_a_key_is_replaced_too() -> None:
    assert decode_json(b'{"\\ud83d": 1}') == {"\ufffd": 1}


@pytest.mark.parametrize("body", [b'{"count": NaN}', b'{"a": Infinity}'])
def test_what_only_a_lax_parser_accepts_is_still_refused(body: bytes) -> None:
    """The tolerant reading is for lone surrogates only, not for NaN and the like."""
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        decode_json(body)


def test_a_body_orjson_reads_never_reaches_the_tolerant_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path is unchanged: the standard library parser is not called."""

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("the slow parser ran")

    monkeypatch.setattr(json, "loads", refuse)

    assert decode_json(b'{"content": "caf\\u00e9"}') == {"content": "café"}


async def test_a_page_with_one_lone_surrogate_yields_every_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [message(i) for i in range(3)]
    body = json.dumps({"count": 3, "items": items}).replace(
        "message 1", "cut emoji \\ud83d"
    )
    async with FakePortSIPServer() as pbx:
        pbx.script([ScriptedResponse(body=body, content_type="application/json")])
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", retry=FAST_RETRY
        ) as client:
            with caplog.at_level(logging.WARNING, logger="external_messages_async"):
                page = await client.get_page(top=3)

    assert [m.content for m in page.items] == [
        "message 0",
        "cut emoji \ufffd",
        "message 2",
    ]
    assert "$.items[1].content" in caplog.text
