"""``--proxy`` and ``--env-proxy``: requests through an HTTP proxy.

The fake PBX stands in for the proxy as well: aiohttp's server answers a
request in absolute form (``GET http://host/path``) by its path, so a PBX
named by an unresolvable host is reached only through the proxy.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from external_messages_async.cli._app import cli
from external_messages_async.cli._errors import EXIT_API_ERROR, EXIT_USAGE
from external_messages_async.testing import FakePortSIPServer

from ._shared import one_error_line
from .conftest import TOKEN

# ".invalid" never resolves (RFC 2606): only a proxy can reach it.
UNREACHABLE = "http://pbx.invalid:8887"


def _list(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(
        cli,
        ["list", "--url", UNREACHABLE, "--token", TOKEN, "--limit", "2",
         "--format", "jsonl", "--max-retries", "0", *args],
        env=env,
    )  # fmt: skip


def test_proxy_sends_every_request_through_it(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = _list(runner, "--proxy", pbx.url)

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    assert pbx.requests


def test_without_a_proxy_the_host_is_not_reached(runner: CliRunner) -> None:
    result = _list(runner)

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result).startswith(f"error: cannot reach {UNREACHABLE}")


def test_env_proxy_honours_http_proxy(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = _list(runner, "--env-proxy", env={"HTTP_PROXY": pbx.url})

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_the_environment_is_ignored_without_env_proxy(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = _list(runner, env={"HTTP_PROXY": pbx.url})

    assert result.exit_code == EXIT_API_ERROR
    assert pbx.requests == []


@pytest.mark.parametrize("proxy", ["ftp://user:pr0xy-secret@proxy:21", "not a url"])
def test_a_bad_proxy_is_a_usage_error_naming_the_flag_without_its_password(
    runner: CliRunner, proxy: str
) -> None:
    result = _list(runner, "--proxy", proxy)

    assert result.exit_code == EXIT_USAGE
    assert one_error_line(result).startswith("error: --proxy ")
    assert "pr0xy-secret" not in result.output


def test_a_proxy_password_never_shows_in_an_error(
    runner: CliRunner, closed_port: int
) -> None:
    proxy = f"http://user:pr0xy-secret@127.0.0.1:{closed_port}"

    result = _list(runner, "--proxy", proxy)

    assert result.exit_code == EXIT_API_ERROR
    one_error_line(result)
    assert "pr0xy-secret" not in result.output
