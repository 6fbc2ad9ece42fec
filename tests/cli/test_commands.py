"""The command through click: flags, environment, output, errors and exit codes.

Commands that talk to a PBX run against a FakePortSIPServer on its own thread,
because the command runs its own event loop with asyncio.run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

import external_messages_async
from external_messages_async import ExternalMessagesError, __version__
from external_messages_async._converter import structure_message
from external_messages_async.cli import _app, _options, _render, _run
from external_messages_async.cli._app import cli
from external_messages_async.cli._errors import (
    EXIT_API_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    describe_error,
)
from external_messages_async.cli._format import CSV_FIELDS, message_fields
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from ._shared import one_error_line, run_list
from .conftest import PASSWORD, TOKEN


def _served(
    pbx: FakePortSIPServer, *, filter: str | None = None
) -> list[dict[str, object]]:
    """What the PBX itself serves for a filter, newest first, as unstructured JSON."""
    from external_messages_async.testing._data import MESSAGE_FIELDS
    from external_messages_async.testing._odata import parse_filter

    keep = (
        parse_filter(filter, frozenset(MESSAGE_FIELDS), frozenset({"created_at"}))
        if filter
        else (lambda m: True)
    )
    return [message_fields(structure_message(m)) for m in pbx.messages if keep(m)]


# --- help, version, usage ------------------------------------------------------------


def test_help_lists_the_four_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])

    assert result.exit_code == 0
    for command in ("demo", "list", "get", "serve"):
        assert command in result.stdout


def test_version_is_printed(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])

    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_help_never_shows_a_secret_from_the_environment(runner: CliRunner) -> None:
    env = {"PORTSIP_TOKEN": TOKEN, "PORTSIP_PASSWORD": PASSWORD}

    outputs = [
        runner.invoke(cli, [name, "--help"], env=env) for name in ("list", "get")
    ]

    for result in outputs:
        assert result.exit_code == 0
        assert "PORTSIP_TOKEN" in result.stdout
        assert TOKEN not in result.output
        assert PASSWORD not in result.output


def test_unknown_flag_is_one_usage_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "--nope"])

    assert result.exit_code == EXIT_USAGE
    assert "--nope" in one_error_line(result)


def test_missing_url_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "--token", TOKEN])

    assert result.exit_code == EXIT_USAGE
    assert "--url" in one_error_line(result)


def test_missing_credentials_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "--url", "http://127.0.0.1:1"])

    assert result.exit_code == EXIT_USAGE
    assert "--token" in one_error_line(result)


def test_token_and_username_together_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["list", "--url", "http://x", "--token", TOKEN, "--username", "alice"]
    )

    assert result.exit_code == EXIT_USAGE
    assert TOKEN not in result.output


def test_bad_since_value_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["list", "--url", "http://x", "--token", TOKEN, "--since", "yesterday"]
    )

    assert result.exit_code == EXIT_USAGE
    line = one_error_line(result)
    assert "--since" in line
    assert "yesterday" in line


def test_since_after_until_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        [
            "list",
            "--url",
            "http://x",
            "--token",
            TOKEN,
            "--since",
            "2024-05-02",
            "--until",
            "2024-05-01",
        ],
    )

    assert result.exit_code == EXIT_USAGE
    assert "must be before" in one_error_line(result)


def test_unknown_type_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["list", "--url", "http://x", "--token", TOKEN, "--type", "fax"]
    )

    assert result.exit_code == EXIT_USAGE
    assert "fax" in one_error_line(result)


def test_bad_url_is_a_usage_error_without_the_token(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "--url", "ftp://pbx", "--token", TOKEN])

    assert result.exit_code == EXIT_USAGE
    one_error_line(result)
    assert TOKEN not in result.output


def test_insecure_and_ca_file_together_is_a_usage_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")

    result = runner.invoke(
        cli,
        [
            "list",
            "--url",
            "https://x",
            "--token",
            TOKEN,
            "--insecure",
            "--ca-file",
            str(ca),
        ],
    )

    assert result.exit_code == EXIT_USAGE
    assert "cannot be used together" in one_error_line(result)


def test_unreadable_ca_file_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")

    result = runner.invoke(
        cli, ["list", "--url", "https://x", "--token", TOKEN, "--ca-file", str(ca)]
    )

    assert result.exit_code == EXIT_USAGE
    assert "--ca-file" in one_error_line(result)


def test_ca_file_is_loaded_into_an_ssl_context(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    """A real CA bundle loads; the plain-http fake PBX then answers as usual."""
    import certifi

    result = run_list(
        runner, pbx, "--ca-file", certifi.where(), "--limit", "2", "--format", "jsonl"
    )

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_missing_password_without_a_terminal_is_a_usage_error(
    runner: CliRunner,
) -> None:
    result = runner.invoke(cli, ["list", "--url", "http://x", "--username", "alice"])

    assert result.exit_code == EXIT_USAGE
    assert "--password" in one_error_line(result)


def test_missing_password_on_a_terminal_is_asked_for_hidden(
    runner: CliRunner, pbx: FakePortSIPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_options, "stdin_is_terminal", lambda: True)

    result = runner.invoke(
        cli,
        [
            "list",
            "--url",
            pbx.url,
            "--username",
            "alice",
            "--limit",
            "3",
            "--format",
            "jsonl",
        ],
        input=PASSWORD + "\n",
    )

    assert result.exit_code == 0, result.output
    assert "Password for alice" in result.output
    assert PASSWORD not in result.output
    assert len(result.stdout.splitlines()) == 3
    assert pbx.login_count == 1


def test_ctrl_c_at_the_password_prompt_exits_130(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_options, "stdin_is_terminal", lambda: True)

    result = runner.invoke(
        cli, ["list", "--url", "http://x", "--username", "alice"], input=""
    )

    assert result.exit_code == EXIT_INTERRUPTED
    assert result.stderr.strip().endswith("interrupted")


# --- list -----------------------------------------------------------------------------


def test_list_jsonl_is_every_message_with_all_17_fields(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = run_list(runner, pbx, "--format", "jsonl", "--page-size", "37")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [orjson.loads(line) for line in lines] == _served(pbx)
    assert all(list(orjson.loads(line)) == list(CSV_FIELDS) for line in lines)
    assert result.stderr.strip() == "250 messages written to stdout"


def test_list_defaults_to_jsonl_when_stdout_is_not_a_terminal(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = run_list(runner, pbx, "--limit", "4")

    assert result.exit_code == 0, result.output
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == _served(pbx)[
        :4
    ]


def test_list_defaults_to_a_table_on_a_terminal(
    runner: CliRunner, pbx: FakePortSIPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_app, "stdout_is_terminal", lambda: True)

    result = run_list(runner, pbx, "--limit", "3")

    assert result.exit_code == 0, result.output
    assert "created_at" in result.stdout
    assert "delivery" in result.stdout
    assert result.stderr == ""


def test_list_csv_to_a_file_has_the_header_and_every_row(
    runner: CliRunner, pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    out = tmp_path / "messages.csv"

    result = run_list(runner, pbx, "--format", "csv", "--output", str(out))

    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0].keys()) == list(CSV_FIELDS)
    assert len(rows) == 250
    assert [row["id"] for row in rows] == [m["id"] for m in _served(pbx)]
    assert result.stderr.strip() == f"250 messages written to {out}"


def test_list_sends_typed_filters_search_and_orderby(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = run_list(
        runner, pbx,
        "--type", "sms", "--direction", "OUT", "--delivery", "ERR", "--delivery", "SENT",
        "--since", "2024-03-01", "--until", "2024-06-01T00:00:00Z",
        "--filter", "sender ne 'nobody'", "--search", "e", "--orderby", "created_at asc",
        "--format", "jsonl",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    sent = pbx.requests[-1].query
    assert sent["filter"] == (
        "msg_type eq 'SMS' and direction eq 'OUT' and "
        "(delivery eq 'ERR' or delivery eq 'SENT') and "
        "created_at ge '2024-03-01T00:00:00Z' and created_at lt '2024-06-01T00:00:00Z' "
        "and (sender ne 'nobody')"
    )
    assert sent["search"] == "e"
    assert sent["orderby"] == "created_at asc"
    got = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert got
    assert all(m["msg_type"] == "SMS" and m["delivery"] in ("ERR", "SENT") for m in got)
    assert [m["created_at"] for m in got] == sorted(m["created_at"] for m in got)


def test_a_quote_in_a_raw_filter_value_is_matched_as_text(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    """Doubled quotes reach the fake PBX's parser as one literal: nothing matches."""
    from external_messages_async import quote_literal

    value = quote_literal("x' or msg_type ne 'none")

    result = run_list(
        runner, pbx, "--filter", f"msg_type eq {value}", "--format", "jsonl"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == "0 messages written to stdout"


def test_list_with_limit_stops_there(runner: CliRunner, pbx: FakePortSIPServer) -> None:
    result = run_list(runner, pbx, "--limit", "120", "--format", "jsonl")

    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 120


def test_insecure_with_plain_http_does_not_warn_about_tls(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = run_list(runner, pbx, "--insecure", "--limit", "1", "--format", "jsonl")

    assert result.exit_code == 0, result.output
    assert result.stderr == "1 message written to stdout\n"
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [("https://pbx:8887", False), ("HTTP://pbx:8887", None), ("http://pbx", None)],
)
def test_insecure_turns_verification_off_only_for_https(
    url: str, expected: bool | None
) -> None:
    conn = _options.connection_from(
        url=url, token=TOKEN, username=None, password=None, domain=None,
        insecure=True, ca_file=None, timeout=1.0, max_retries=0, user_scope=False,
    )  # fmt: skip

    assert _options._ssl_setting(conn) is expected


def test_unreachable_host_is_one_line_exit_1(
    runner: CliRunner, closed_port: int
) -> None:
    result = runner.invoke(
        cli,
        [
            "list",
            "--url",
            f"http://127.0.0.1:{closed_port}",
            "--token",
            TOKEN,
            "--timeout",
            "5",
        ],
    )

    assert result.exit_code == EXIT_API_ERROR
    line = one_error_line(result)
    assert f"cannot reach http://127.0.0.1:{closed_port}" in line
    assert TOKEN not in result.output


def test_refused_token_is_one_line_exit_1_without_the_token(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = runner.invoke(cli, ["list", "--url", pbx.url, "--token", "wrong-" + TOKEN])

    assert result.exit_code == EXIT_API_ERROR
    line = one_error_line(result)
    assert "refused the credentials" in line
    assert "401" in line
    assert TOKEN not in result.output


def test_refused_password_is_one_line_exit_1_without_the_password(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = runner.invoke(
        cli,
        [
            "list",
            "--url",
            pbx.url,
            "--username",
            "alice",
            "--domain",
            "pbx.example.com",
        ],
        env={"PORTSIP_PASSWORD": "wrong-" + PASSWORD},
    )

    assert result.exit_code == EXIT_API_ERROR
    assert "refused the credentials" in one_error_line(result)
    assert PASSWORD not in result.output


def test_bad_filter_400_is_one_line_exit_1(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = run_list(runner, pbx, "--filter", "msg_type eq")

    assert result.exit_code == EXIT_API_ERROR
    assert "rejected the request" in one_error_line(result)


def test_a_failure_mid_way_keeps_a_partial_file_and_says_how_to_resume(
    runner: CliRunner, pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    out = tmp_path / "m.jsonl"
    out.write_text("yesterday\n")
    pbx.script([ScriptedResponse(), ScriptedResponse(status=403)])

    result = run_list(runner, pbx, "--output", str(out), "--page-size", "50")

    assert result.exit_code == EXIT_API_ERROR
    line = one_error_line(result)
    assert "may not read" in line
    assert line.endswith(
        f"(50 messages kept in {out}.partial; --skip 50 resumes after them)"
    )
    assert out.read_text() == "yesterday\n"
    partial = tmp_path / "m.jsonl.partial"
    assert [orjson.loads(x) for x in partial.read_text().splitlines()] == _served(pbx)[
        :50
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl", "m.jsonl.partial"]


def test_resuming_with_skip_fetches_the_rest(
    runner: CliRunner, pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    rest = tmp_path / "rest.jsonl"

    result = run_list(runner, pbx, "--skip", "200", "-o", str(rest))

    assert result.exit_code == 0, result.output
    assert [orjson.loads(x) for x in rest.read_text().splitlines()] == _served(pbx)[
        200:
    ]


def test_a_refused_login_leaves_an_existing_output_file_alone(
    runner: CliRunner, pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    out = tmp_path / "backup.jsonl"
    out.write_text("yesterday\n")

    result = runner.invoke(
        cli, ["list", "--url", pbx.url, "--token", "bad", "-o", str(out)]
    )

    assert result.exit_code == EXIT_API_ERROR
    assert out.read_text() == "yesterday\n"


def test_an_unwritable_output_file_is_one_line_exit_1_before_any_request(
    runner: CliRunner, pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    out = tmp_path / "missing-dir" / "m.jsonl"

    result = run_list(runner, pbx, "--output", str(out))

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result).startswith(f"error: cannot write {out}: ")
    assert pbx.requests == []


def test_ctrl_c_during_list_exits_130(
    runner: CliRunner, pbx: FakePortSIPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_run, "run_list", interrupted)

    result = run_list(runner, pbx)

    assert result.exit_code == EXIT_INTERRUPTED
    assert "Traceback" not in result.output


def test_an_unexpected_bug_is_still_one_line(
    runner: CliRunner, pbx: FakePortSIPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(_run, "run_list", broken)

    result = run_list(runner, pbx)

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == "error: unexpected RuntimeError: boom"


def test_list_against_the_user_scope(runner: CliRunner, pbx: FakePortSIPServer) -> None:
    result = run_list(runner, pbx, "--user-scope", "--limit", "2", "--format", "jsonl")

    assert result.exit_code == 0, result.output
    assert pbx.requests[-1].path == "/api/user/external_messages"


def test_environment_variables_supply_the_connection(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    env = {"PORTSIP_URL": pbx.url, "PORTSIP_TOKEN": TOKEN}

    result = runner.invoke(cli, ["list", "--limit", "2", "--format", "jsonl"], env=env)

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


# --- get ------------------------------------------------------------------------------


def test_get_prints_jsonl_in_the_order_given(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    ids = [str(pbx.messages[5]["id"]), str(pbx.messages[0]["id"])]

    result = runner.invoke(
        cli, ["get", "--url", pbx.url, "--token", TOKEN, "--format", "jsonl", *ids]
    )

    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["id"] for line in result.stdout.splitlines()] == ids


def test_get_handles_ids_with_slash_plus_and_equals(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    odd = next(
        str(m["id"]) for m in pbx.messages if "/" in str(m["id"]) or "+" in str(m["id"])
    )

    result = runner.invoke(
        cli, ["get", "--url", pbx.url, "--token", TOKEN, "--format", "jsonl", odd]
    )

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["id"] == odd


def test_get_prints_a_table_by_default(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    message_id = str(pbx.messages[0]["id"])

    result = runner.invoke(cli, ["get", "--url", pbx.url, "--token", TOKEN, message_id])

    assert result.exit_code == 0, result.output
    assert "created_at" in result.stdout
    assert str(pbx.messages[0]["created_at"])[:10] in result.stdout


def test_get_unknown_id_is_one_line_exit_1_after_the_ones_found(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    known = str(pbx.messages[0]["id"])

    result = runner.invoke(
        cli,
        [
            "get",
            "--url",
            pbx.url,
            "--token",
            TOKEN,
            "--format",
            "jsonl",
            known,
            "no-such-id",
        ],
    )

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == "error: no message with id 'no-such-id'"
    assert orjson.loads(result.stdout)["id"] == known


def test_get_needs_an_id(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["get", "--url", "http://x", "--token", TOKEN])

    assert result.exit_code == EXIT_USAGE
    one_error_line(result)


# --- demo and serve ---------------------------------------------------------------------


def test_demo_prints_the_summary(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "--messages", "300", "--seed", "2"])

    assert result.exit_code == 0, result.output
    out = result.stdout
    for heading in (
        "Messages by type, direction and delivery",
        "Failures",
        "Latest 10 messages",
    ):
        assert heading in out
    assert "Pulled 300 of 300 messages in 3 pages" in out


def test_serve_stops_on_ctrl_c_with_exit_0(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    async def interrupted(**kwargs: object) -> None:
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(_run, "run_serve", interrupted)

    result = runner.invoke(
        cli,
        [
            "serve",
            "--port",
            "0",
            "--messages",
            "5",
            "--latency",
            "0.01",
            "--rate-503",
            "0.5",
        ],
    )

    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "server stopped"
    faults = seen["faults"]
    assert (faults.latency, faults.rate_503, faults.rate_429) == (0.01, 0.5, 0.0)  # type: ignore[attr-defined]  # seen holds objects; this one is the Faults the command built
    assert seen["token"] == _run.DEMO_TOKEN


def test_serve_on_a_busy_port_is_one_line_exit_1(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = runner.invoke(cli, ["serve", "--port", str(pbx.port)])

    assert result.exit_code == EXIT_API_ERROR
    assert f"cannot listen on 127.0.0.1:{pbx.port}" in one_error_line(result)


def test_serve_never_prints_a_token_it_was_given(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(**kwargs: object) -> None:
        raise ExternalMessagesError(f"something about {kwargs['token']}")

    monkeypatch.setattr(_run, "run_serve", failing)

    result = runner.invoke(cli, ["serve", "--token", TOKEN])

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == "error: something about ***"


def test_bad_fault_rate_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve", "--rate-429", "1.5"])

    assert result.exit_code == EXIT_USAGE
    assert "--rate-429" in one_error_line(result)


def test_describe_error_without_url_keeps_the_detail() -> None:
    from external_messages_async.errors import APIConnectionError, ServerError

    assert describe_error(APIConnectionError("no route")) == "no route"
    assert describe_error(ServerError("GET /x -> 500", status=500)) == "GET /x -> 500"


def test_csv_sink_when_nothing_matched_still_has_the_header(tmp_path: Path) -> None:
    out = tmp_path / "empty.csv"
    sink = _render.Sink("csv", str(out))

    sink.close()
    sink.close()

    assert list(csv.reader(io.StringIO(out.read_text()))) == [list(CSV_FIELDS)]


def test_a_table_with_no_match_says_so(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = run_list(
        runner, pbx, "--filter", "sender eq 'nobody'", "--format", "table"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No messages."


def test_python_m_runs_the_same_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", ["external-messages", "--version"])

    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(
            str(Path(external_messages_async.__file__).with_name("__main__.py")),
            run_name="__main__",
        )

    assert stopped.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_get_names_every_unknown_id_once(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    known = str(pbx.messages[0]["id"])

    result = runner.invoke(
        cli,
        [
            "get",
            "--url",
            pbx.url,
            "--token",
            TOKEN,
            "--format",
            "jsonl",
            "gone-1",
            known,
            "gone-2",
            "gone-1",
        ],
    )

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == "error: no messages with ids 'gone-1', 'gone-2'"
    assert orjson.loads(result.stdout)["id"] == known


def test_get_reports_another_failure_after_writing_what_it_found(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    first, second = str(pbx.messages[0]["id"]), str(pbx.messages[1]["id"])
    pbx.script([ScriptedResponse(status=403)])

    result = runner.invoke(
        cli,
        ["get", "--url", pbx.url, "--token", TOKEN, "--format", "jsonl", first, second],
    )

    assert result.exit_code == EXIT_API_ERROR
    assert "may not read" in one_error_line(result)
    assert len(result.stdout.splitlines()) == 1


def test_a_bugs_last_resort_line_hides_the_token(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom with {TOKEN}")

    monkeypatch.setattr(_run, "run_get", broken)

    result = runner.invoke(
        cli, ["get", "--url", "http://127.0.0.1:9", "--token", TOKEN, "some-id"]
    )

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == "error: unexpected RuntimeError: boom with ***"
    assert TOKEN not in result.output


def test_a_usage_error_echoing_a_secret_from_the_environment_hides_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTSIP_PASSWORD", PASSWORD)

    result = runner.invoke(cli, ["list", "--url", "http://h", "--format", PASSWORD])

    assert result.exit_code == EXIT_USAGE
    assert "'***' is not one of" in one_error_line(result)
    assert PASSWORD not in result.output


def test_secrets_in_reads_both_option_forms_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTSIP_TOKEN", "env-token")
    monkeypatch.delenv("PORTSIP_PASSWORD", raising=False)

    found = _options.secrets_in(["list", "--token", "t1", "--password=p1", "--token"])

    assert found == ["env-token", "t1", "p1"]


def test_the_subpackage_hands_out_the_group_and_main_on_first_use() -> None:
    import external_messages_async.cli as package

    assert (package.cli, package.main) == (_app.cli, _app.main)
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018 - the attribute access is the test
