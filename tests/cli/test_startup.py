"""What ``external-messages --help`` and ``--version`` import: click, not the SDK or rich.

The time it takes is measured in ``benchmarks/startup.py``; here a fresh
interpreter reports which modules the command itself pulled in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Imports the package root first, then runs the command, and prints the
# modules the command added on top of the root's own.
_PROBE = """
import sys
import external_messages_async
before = set(sys.modules)
from external_messages_async.cli._app import main
sys.argv = ["external-messages", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.__stderr__.write("\\n".join(sorted(set(sys.modules) - before)))
"""

HEAVY = {
    "aiohttp",
    "asyncio",
    "cattrs",
    "orjson",
    "rich.console",
    "rich.progress",
    "rich.table",
    "external_messages_async._client",
    "external_messages_async.testing._server",
    "external_messages_async.cli._format",
    "external_messages_async.cli._render",
}


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_load_neither_the_sdk_nor_rich(flag: str) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE")
    }

    done = subprocess.run(
        [sys.executable, "-c", _PROBE, flag],
        capture_output=True, text=True, cwd=ROOT, env=env, check=True,
    )  # fmt: skip

    added = set(done.stderr.split())
    assert "click" in added
    assert "external_messages_async.cli._app" in added
    assert added & HEAVY == set()


@pytest.mark.parametrize(
    "name", ["__init__", "_app", "_errors", "_format", "_options", "_render", "_run"]
)
def test_every_cli_module_has_a_sorted_all_of_names_it_defines(name: str) -> None:
    import importlib

    module = importlib.import_module(
        "external_messages_async.cli" + ("" if name == "__init__" else f".{name}")
    )

    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, exported) for exported in module.__all__)
