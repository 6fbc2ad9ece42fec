"""The sink and the encoders without a server: streams that fail, files that cannot move."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from external_messages_async import ExternalMessage
from external_messages_async.cli._errors import CliError
from external_messages_async.cli._render import Format, OutputClosed, Sink, encoder_for


def _message(message_id: str) -> ExternalMessage:
    return ExternalMessage(id=message_id, content=f"text of {message_id}")


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_a_closed_stdout_stops_quietly_with_exit_code_0() -> None:
    sink = Sink("jsonl", stdout=_ClosedPipe())

    with pytest.raises(OutputClosed) as stopped:
        sink.write(_message("a"))

    assert (stopped.value.message, stopped.value.exit_code) == (None, 0)
    assert sink.written == 0


def test_a_full_stdout_is_a_write_error_naming_stdout() -> None:
    sink = Sink("jsonl", stdout=_FullDisk())

    with pytest.raises(
        CliError, match=r"^cannot write stdout: No space left on device$"
    ):
        sink.write(_message("a"))


def test_a_path_under_a_file_cannot_be_written(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    sink = Sink("jsonl", str(plain / "m.jsonl"))

    with pytest.raises(CliError, match=r"cannot write .*: Not a directory"):
        sink.open()


def test_a_failed_rename_is_a_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "m.jsonl"
    sink = Sink("jsonl", str(out))
    sink.write(_message("a"))

    def refuse(source: str, target: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)

    with pytest.raises(CliError, match=f"^cannot write {out}: Permission denied$"):
        sink.close()
    assert not out.exists()


def test_a_table_waits_for_a_page_with_messages_to_plan_its_columns() -> None:
    encoder = encoder_for("table", width=200)

    empty = encoder.page([])
    first = encoder.page([_message("NzAw")])

    assert empty == ""
    assert first.splitlines()[0].startswith("id  ")
    assert "NzAw" in first.splitlines()[2]


def test_records_are_separated_by_a_blank_line_also_across_pages() -> None:
    encoder = encoder_for("record")

    text = encoder.page([_message("a"), _message("b")]) + encoder.page([_message("c")])

    blocks = text.split("\n\n")
    assert [block.splitlines()[0].split() for block in blocks] == [
        ["id", "a"],
        ["id", "b"],
        ["id", "c"],
    ]
    assert text.endswith("\n")
    assert not text.endswith("\n\n")


def test_an_empty_table_says_so_and_other_formats_end_with_nothing() -> None:
    assert encoder_for("table").end(0) == "No messages.\n"
    assert encoder_for("table").end(3) == ""
    assert encoder_for("jsonl").end(0) == ""
    assert encoder_for("record").start() == ""


def test_a_closed_pipe_is_pointed_at_devnull_so_later_flushes_pass() -> None:
    """The interpreter flushes stdout at exit; after a closed pipe that must not fail."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w", encoding="utf-8") as stream:
        sink = Sink("jsonl", stdout=stream)

        with pytest.raises(OutputClosed):
            sink.write(_message("a"))

        stream.write("more\n")
        stream.flush()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table", "record"])
def test_a_file_receives_the_bytes_of_the_page_text(fmt: Format) -> None:
    # JSON lines reach a file without a decode and encode; the bytes must be
    # exactly the text's, non-ASCII content included.
    messages = [
        ExternalMessage(id="a", content='héllo 👋, "quoted"\nline'),
        _message("b"),
    ]

    assert encoder_for(fmt).page_bytes(messages) == (
        encoder_for(fmt).page(messages).encode()
    )


def test_a_jsonl_file_holds_what_stdout_shows(tmp_path: Path) -> None:
    messages = [ExternalMessage(id="a", content="ünïcode"), _message("b")]
    shown = io.StringIO()
    on_stdout = Sink("jsonl", stdout=shown)
    to_file = Sink("jsonl", path=str(tmp_path / "out.jsonl"))

    for sink in (on_stdout, to_file):
        sink.write_page(messages)
        sink.write_page([])
        sink.close()

    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == shown.getvalue()
    assert shown.getvalue().count("\n") == 2
