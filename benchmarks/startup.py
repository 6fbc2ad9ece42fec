"""Measure start-up costs: ``external-messages --help``/``--version``, and the pytest plugin.

Usage::

    python benchmarks/startup.py              # 15 rounds, update docs/benchmarks.md
    python benchmarks/startup.py --runs 5 --no-write

Like hyperfine, each command runs in a fresh process, after two warm-up runs,
``--runs`` times; the commands take turns within each round so that they share
whatever else the machine is doing. Reported are medians of the wall time and
of the child's CPU time (user + system, from ``os.wait4``), which other
processes on a busy machine disturb less than the wall time.

The commands:

- ``python -c pass``: the interpreter alone, the floor;
- ``external-messages --version`` and ``--help`` (the installed script, or
  ``python -m external_messages_async`` without one);
- ``python -c "import external_messages_async"``: the package root alone;
- ``python -m pytest`` on a one-test project in a temporary folder, with
  plugin autoloading off (so that the other plugins installed here do not
  drown the figure) and pytest-asyncio loaded (as in a project with async
  tests, where pytest loads it anyway), without and with
  ``-p external_messages_async.testing._plugin``, the plugin every pytest
  run loads once the package is installed: the difference is what the
  package adds to someone else's test run.

Targets (issue 11): ``--help`` and ``--version`` under 150 ms of wall time, and
at most 20 ms added to an unrelated pytest run.

The results replace the part of ``docs/benchmarks.md`` between the
``startup`` markers (appended when missing); the rest of that page belongs to
``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN = "<!-- startup:begin (written by benchmarks/startup.py) -->"
END = "<!-- startup:end -->"
HELP_TARGET_MS = 150.0
PLUGIN_TARGET_MS = 20.0


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("external-messages")
    if script.exists():
        return [str(script)]
    found = shutil.which("external-messages")
    return [found] if found else [sys.executable, "-m", "external_messages_async"]


def run_once(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run a command to its end; return its wall and CPU seconds."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 5):  # pytest exits 5 when nothing ran
        raise SystemExit(f"{command} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(
    commands: dict[str, list[str]], cwd: Path, runs: int
) -> dict[str, tuple[float, float]]:
    """Median wall and CPU milliseconds of each command, rounds interleaved."""
    for command in commands.values():
        for _ in range(2):
            run_once(command, cwd)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            wall, cpu = run_once(command, cwd)
            walls[name].append(wall * 1000)
            cpus[name].append(cpu * 1000)
    return {
        name: (statistics.median(walls[name]), statistics.median(cpus[name]))
        for name in commands
    }


def report(
    results: dict[str, tuple[float, float]], runs: int, load: tuple[float, float]
) -> str:
    """The markdown section."""
    floor_wall, floor_cpu = results["python -c pass"]
    plain_wall, plain_cpu = results["pytest without the plugin"]
    with_wall, with_cpu = results["pytest with the plugin"]
    rows = []
    for name, (wall, cpu) in results.items():
        base_wall, base_cpu = (
            (plain_wall, plain_cpu)
            if name == "pytest with the plugin"
            else (floor_wall, floor_cpu)
        )
        rows.append(
            f"| {name} | {wall:.0f} | {cpu:.0f} | {wall - base_wall:+.0f} | {cpu - base_cpu:+.0f} |"
        )
    help_wall = max(
        results["external-messages --help"][0],
        results["external-messages --version"][0],
    )
    added_wall = with_wall - plain_wall
    added_cpu = with_cpu - plain_cpu
    verdict_help = "met" if help_wall < HELP_TARGET_MS else "NOT met"
    verdict_plugin = (
        "met" if max(added_wall, added_cpu) <= PLUGIN_TARGET_MS else "NOT met"
    )
    return "\n".join(
        [
            BEGIN,
            "## Start-up",
            "",
            f"Measured {datetime.now(timezone.utc):%Y-%m-%d} by `python benchmarks/startup.py` "
            f"({runs} interleaved rounds after 2 warm-ups; medians; CPython "
            f"{platform.python_version()}; load average (1 min) before / after: "
            f"{load[0]:.2f} / {load[1]:.2f}).",
            "",
            "| command | wall ms | CPU ms | wall vs floor | CPU vs floor |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            "The floor is `python -c pass`, except for the pytest run with the plugin, "
            "whose floor is the same run without it (both with "
            "`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p pytest_asyncio.plugin`, the "
            "plugin added with `-p external_messages_async.testing._plugin`).",
            "",
            f"- `--help` / `--version` under {HELP_TARGET_MS:.0f} ms of wall time: "
            f"{verdict_help} (slower of the two: {help_wall:.0f} ms).",
            f"- At most {PLUGIN_TARGET_MS:.0f} ms added to an unrelated pytest run: "
            f"{verdict_plugin} (added: {added_wall:+.0f} ms wall, {added_cpu:+.0f} ms CPU).",
            "",
            "Beyond the package root (the `import external_messages_async` row, "
            "paid by both targets), the command imports click and the message "
            "enums only; the SDK's client, aiohttp, asyncio and rich load when a "
            "command runs. The pytest plugin imports nothing of the package until "
            "its fixture is used, so what it adds is the package root's own imports.",
            END,
        ]
    )


def startup_section(path: Path) -> str | None:
    """The marked start-up section of a page, or ``None``."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN not in text or END not in text:
        return None
    return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END


def write_section(section: str, path: Path) -> None:
    """Replace the marked section of the page, or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "test_unrelated.py").write_text("def test_one():\n    assert True\n")
        pytest = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "pytest_asyncio.plugin",
        ]  # fmt: skip
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import external_messages_async": [
                sys.executable, "-c", "import external_messages_async",
            ],
            "external-messages --version": [*_cli(), "--version"],
            "external-messages --help": [*_cli(), "--help"],
            "pytest without the plugin": pytest,
            "pytest with the plugin": [
                *pytest, "-p", "external_messages_async.testing._plugin",
            ],
        }  # fmt: skip
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        results = measure(commands, project, args.runs)
    section = report(results, args.runs, (load_before, os.getloadavg()[0]))
    print(section)
    if not args.no_write:
        write_section(section, Path(args.output))


if __name__ == "__main__":
    main()
