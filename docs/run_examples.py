"""Run every example in the docs and the README; exit non-zero if one breaks.

``nox -s docs`` runs this before building the site. What it runs:

- every `````python`` block of ``README.md`` and ``docs/**/*.md``, each as its
  own script in a fresh temporary directory, with ``python -X dev``; a block
  fails on a non-zero exit or when it leaks (an unclosed session or a
  never-awaited coroutine reported on stderr);
- a `````text`` block marked ``<!-- example: output -->`` is the exact
  standard output of the python block just before it;
- a python block marked ``<!-- example: pytest -->`` is a test module, run
  with pytest (the docs session installs pytest and pytest-asyncio);
- every ``$ external-messages ...`` line of a `````console`` block is run (after
  the block's ``$ export NAME=value`` lines have set its environment), and
  the lines after it (up to the next ``$`` line) must be its output, exactly,
  unless the block is marked ``<!-- example: output varies -->`` (then only
  the exit status is checked: non-zero when the shown output has an
  ``error:`` line, zero otherwise);
- the ``>>>`` examples in the package's docstrings, with :mod:`doctest`.

A block marked ``<!-- example: skip (why) -->`` is not run; keep those rare.

The examples talk to a real PBX's placeholders, so this script starts a
:class:`~external_messages_async.testing.FakePortSIPServer` (the same data as
``external-messages serve``: 1,000 messages, seed 1) and substitutes its URL
for ``https://pbx.example.com:8887`` and ``http://127.0.0.1:8887``, and its
token for ``YOUR-ACCESS-TOKEN``. It also accepts the password login
``api-user`` / ``YOUR-PASSWORD`` (and ``admin`` / ``admin-password``, as
``serve`` does). Files in ``docs/_examples/`` (such as ``pbx-ca.pem``) are
copied into each example's directory.

Usage: ``python docs/run_examples.py [FILE.md ...]`` (default: all).
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIXTURES = DOCS / "_examples"
TIMEOUT = 120.0

PLACEHOLDER_URLS = ("https://pbx.example.com:8887", "http://127.0.0.1:8887")
PLACEHOLDER_TOKEN = "YOUR-ACCESS-TOKEN"
USERS = {"admin": "admin-password", "api-user": "YOUR-PASSWORD"}

# What an example must not print on stderr even when it exits 0.
LEAKS = ("Unclosed", "Exception ignored", "was never awaited", "Traceback")

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^<!--\s*example:\s*(?P<what>.+?)\s*-->$")


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: str | None  # the "example: ..." marker right before it, if any

    @property
    def where(self) -> str:
        """``file:line`` for messages."""
        path = (
            self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        )
        return f"{path}:{self.line}"


@dataclass
class Report:
    """Counts and failures of one run."""

    ran: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, where: str, what: str, detail: str = "") -> None:
        """Record and print a failure."""
        message = f"FAILED {where}: {what}"
        if detail:
            message += "\n" + _indent(detail.rstrip())
        self.failures.append(message)
        print(message, flush=True)


def _indent(text: str) -> str:
    return "\n".join("    | " + line for line in text.splitlines())


def blocks(path: Path) -> Iterator[Block]:
    """Yield the fenced code blocks of a Markdown file, with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    last_text: str | None = None  # the last non-blank line outside a block
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            if lines[index].strip():
                last_text = lines[index].strip()
            index += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        start = index
        body = []
        index += 1
        while index < len(lines):
            closing = lines[index].strip()
            if closing.startswith(fence) and not closing.strip(fence[0]):
                break
            body.append(lines[index])
            index += 1
        else:
            raise SystemExit(f"{path}:{start + 1}: unclosed code fence")
        index += 1
        marker = MARKER.match(last_text or "")
        yield Block(
            path=path,
            line=start + 1,
            lang=info.split()[0] if info else "",
            text="\n".join(body) + "\n",
            marker=marker["what"] if marker else None,
        )
        last_text = None


def substitute(text: str, url: str, token: str) -> str:
    """Point the placeholders of an example at the fake server."""
    for placeholder in PLACEHOLDER_URLS:
        text = text.replace(placeholder, url)
    return text.replace(PLACEHOLDER_TOKEN, token)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = "100"
    env["TERM"] = "dumb"
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    # dlt reports anonymous usage over the network by default; examples stay local.
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    for name in (
        "PORTSIP_URL",
        "PORTSIP_TOKEN",
        "PORTSIP_USERNAME",
        "PORTSIP_PASSWORD",
        "PORTSIP_DOMAIN",
    ):
        env.pop(name, None)
    return env


def _workdir() -> tempfile.TemporaryDirectory[str]:
    tmp = tempfile.TemporaryDirectory(prefix="docs-example-")
    if FIXTURES.is_dir():
        for fixture in FIXTURES.iterdir():
            shutil.copy(fixture, tmp.name)
    return tmp


def _run(
    argv: list[str], cwd: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**_env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def run_python(block: Block, url: str, token: str, report: Report) -> str | None:
    """Run a python block; return its stdout, or ``None`` if it failed."""
    code = substitute(block.text, url, token)
    with _workdir() as tmp:
        if block.marker == "pytest":
            script = Path(tmp, "test_example.py")
            script.write_text(code, encoding="utf-8")
            argv = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-W",
                "error",
                # What the how-to guide tells users to put in their config.
                "-o",
                "asyncio_default_fixture_loop_scope=function",
                script.name,
            ]
        else:
            script = Path(tmp, "example.py")
            script.write_text(code, encoding="utf-8")
            argv = [sys.executable, "-X", "dev", script.name]
        try:
            result = _run(argv, tmp)
        except subprocess.TimeoutExpired:
            report.fail(block.where, f"python block did not finish within {TIMEOUT:g}s")
            return None
    report.ran += 1
    if result.returncode != 0:
        report.fail(
            block.where,
            f"python block exited with {result.returncode}",
            (result.stdout + result.stderr)[-4000:],
        )
        return None
    leaks = [word for word in LEAKS if word in result.stderr]
    if leaks:
        report.fail(
            block.where,
            f"python block leaked ({', '.join(leaks)})",
            result.stderr[-4000:],
        )
        return None
    return result.stdout


def _same(expected: str, actual: str) -> bool:
    def norm(text: str) -> list[str]:
        # Trailing spaces (rich pads table rows) and blank edges do not count.
        return (
            "\n".join(line.rstrip() for line in text.splitlines())
            .strip("\n")
            .splitlines()
        )

    return norm(expected) == norm(actual)


def check_output(block: Block, stdout: str | None, url: str, report: Report) -> None:
    """Compare a marked text block with the stdout of the python block before it."""
    if stdout is None:
        return  # the python block already failed
    actual = stdout.replace(url, PLACEHOLDER_URLS[1])
    if not _same(block.text, actual):
        report.fail(
            block.where,
            "the output shown differs from the output the example printed",
            _diff(block.text, actual),
        )


def _diff(expected: str, actual: str) -> str:
    import difflib

    return "\n".join(
        difflib.unified_diff(
            expected.strip("\n").splitlines(),
            actual.strip("\n").splitlines(),
            "shown in the docs",
            "printed now",
            lineterm="",
        )
    )


def console_commands(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``(command, shown output)`` for each ``$ external-messages`` line.

    ``$ export NAME=value`` lines are yielded too: they set the environment of
    the block's later commands.
    """
    command: str | None = None
    output: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, "\n".join(output)
            runnable = line[2:].startswith(("external-messages", "export "))
            command = line[2:] if runnable else None
            output = []
        elif command is not None:
            output.append(line)
    if command is not None:
        yield command, "\n".join(output)


def run_console(block: Block, url: str, token: str, report: Report) -> None:
    """Run the CLI commands of a console block and compare their output."""
    exe = Path(sys.executable).with_name("external-messages")
    exported: dict[str, str] = {}
    for command, shown in console_commands(block.text):
        argv = shlex.split(substitute(command, url, token))
        if argv[0] == "export":
            for assignment in argv[1:]:
                name, _, value = assignment.partition("=")
                exported[name] = value
            continue
        if any(part in ("|", ">", "&&", ";") for part in argv):
            report.fail(
                block.where,
                f"shell syntax is not supported in a checked command: {command}",
            )
            continue
        with _workdir() as tmp:
            try:
                result = _run([str(exe), *argv[1:]], tmp, exported)
            except subprocess.TimeoutExpired:
                report.fail(
                    block.where, f"`{command}` did not finish within {TIMEOUT:g}s"
                )
                continue
        report.ran += 1
        actual = (result.stdout + result.stderr).replace(url, PLACEHOLDER_URLS[1])
        wants_error = any(line.startswith("error:") for line in shown.splitlines())
        if (result.returncode != 0) != wants_error:
            report.fail(
                block.where,
                f"`{command}` exited with {result.returncode}",
                actual[-4000:],
            )
            continue
        varies = (block.marker or "").startswith("output varies")
        if not varies and not _same(shown, actual):
            report.fail(
                block.where,
                f"the output shown for `{command}` differs",
                _diff(shown, actual),
            )


def run_doctests(report: Report) -> None:
    """Run the ``>>>`` examples of the package's docstrings."""
    import external_messages_async

    names = [external_messages_async.__name__]
    for info in pkgutil.walk_packages(
        external_messages_async.__path__, "external_messages_async."
    ):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    for name in sorted(names):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # e.g. the CLI without its extra
            report.fail(name, f"cannot import for doctests: {exc}")
            continue
        finder = doctest.DocTestFinder(exclude_empty=True)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        # dir() and getattr() also load the names a lazy module has not yet.
        globs = {attr: getattr(module, attr) for attr in dir(module)}
        for test in finder.find(module, name, globs=globs):
            if not test.examples:
                continue
            output: list[str] = []
            result = runner.run(test, out=output.append)
            report.ran += 1
            if result.failed:
                report.fail(
                    f"docstring of {test.name}",
                    f"{result.failed} doctest example(s) failed",
                    "".join(output),
                )


def markdown_files(args: list[str]) -> list[Path]:
    """The files to check: the arguments, or the README and every docs page."""
    if args:
        return [Path(arg).resolve() for arg in args]
    pages = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
    return [ROOT / "README.md", *pages]


def main(args: list[str]) -> int:
    """Run the examples; return the exit status."""
    from external_messages_async.testing import FakePortSIPServer

    report = Report()
    server = FakePortSIPServer(1000, seed=1, users=USERS)
    with server.run_in_thread() as pbx:
        url, token = pbx.url, pbx.token or ""
        for path in markdown_files(args):
            stdout: str | None = None
            for block in blocks(path):
                if block.marker is not None and block.marker.startswith("skip"):
                    report.skipped += 1
                    stdout = None
                    continue
                if block.lang in ("python", "py"):
                    stdout = run_python(block, url, token, report)
                    continue
                if block.lang == "text" and block.marker == "output":
                    check_output(block, stdout, url, report)
                elif block.lang == "console":
                    run_console(block, url, token, report)
                stdout = None
    if not args:
        run_doctests(report)
    print(
        f"docs examples: {report.ran} ran, {len(report.failures)} failed, {report.skipped} skipped"
    )
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
