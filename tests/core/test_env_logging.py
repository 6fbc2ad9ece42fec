"""EXTERNAL_MESSAGES_LOG=debug|info installs a stderr handler; one line per attempt."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from external_messages_async import ExternalMessagesClient
from external_messages_async._logs import _EnvHandler, level_from_env
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import FAST_RETRY

LOGGER = logging.getLogger("external_messages_async")
USER, PASSWORD = "alice", "correct-horse-battery"


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    level = LOGGER.level
    yield
    LOGGER.setLevel(level)
    for handler in [h for h in LOGGER.handlers if isinstance(h, _EnvHandler)]:
        LOGGER.removeHandler(handler)


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("debug", logging.DEBUG),
        (" INFO ", logging.INFO),
        ("", None),
        ("trace", None),
    ],
)
def test_the_level_comes_from_the_variable(value: str, level: int | None) -> None:
    assert level_from_env({"EXTERNAL_MESSAGES_LOG": value}) == level


def test_without_the_variable_no_handler_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EXTERNAL_MESSAGES_LOG", raising=False)

    ExternalMessagesClient("https://pbx.example.com", token="t")

    assert not any(isinstance(h, _EnvHandler) for h in LOGGER.handlers)


async def test_debug_logs_one_line_per_attempt_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXTERNAL_MESSAGES_LOG", "debug")
    async with FakePortSIPServer(5, users={USER: PASSWORD}) as pbx:
        pbx.script(
            [
                ScriptedResponse(status=503),
                ScriptedResponse(headers={"X-Request-Id": "req-7"}),
            ]
        )
        client = ExternalMessagesClient(
            pbx.url, username=USER, password=PASSWORD, retry=FAST_RETRY
        )
        ExternalMessagesClient(pbx.url, token="x")  # a second client adds nothing
        async with client:
            await client.get_page(top=2, filter="msg_type eq 'SMS'")
        tokens = {
            r.headers.get("Authorization", "").removeprefix("Bearer ")
            for r in pbx.requests
        } - {""}

    err = capsys.readouterr().err
    attempts = re.findall(
        r"attempt (\d): (\w+) (\S+) -> (\d+) in \d+ ms \[request id (\S+)\]", err
    )
    assert attempts == [
        ("1", "POST", "/api/login/oauth/token", "200", "-"),
        ("1", "GET", "/api/external_messages", "503", "-"),
        ("2", "GET", "/api/external_messages", "200", "req-7"),
        ("1", "POST", "/api/login/oauth/revoke", "200", "-"),
    ]
    assert sum(isinstance(h, _EnvHandler) for h in LOGGER.handlers) == 1
    assert PASSWORD not in err
    assert tokens
    assert not any(token in err for token in tokens)
    assert "msg_type" not in err


async def test_info_shows_no_attempt_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXTERNAL_MESSAGES_LOG", "info")
    async with (
        FakePortSIPServer(5) as pbx,
        ExternalMessagesClient(pbx.url, token="demo-token") as client,
    ):
        await client.get_page(top=1)

    assert LOGGER.level == logging.INFO
    assert "attempt 1" not in capsys.readouterr().err
