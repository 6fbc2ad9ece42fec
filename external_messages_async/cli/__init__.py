"""The ``external-messages`` command line, in layers.

- :mod:`._app`: click parsing, the ``cli`` group, the built-in commands and
  :func:`main` (the console script).
- :mod:`._options`: what every command talking to a PBX shares: the
  connection flags, the client, and :func:`._options.run_sync`, which runs an
  async function and turns failures into one line and an exit code.
- :mod:`._run`: the async functions that do each command's work.
- :mod:`._render`: rich rendering and the output sinks (stdout or a file).
- :mod:`._format`: pure formatting: a JSON line, a CSV row, table cells.
- :mod:`._errors`: exit codes, :class:`._errors.CliError`, error wording.

How to add a command, say ``watch``:

1. Create ``cli/_watch.py`` holding both its click command (decorated with
   ``@click.command()`` and, if it talks to a PBX,
   :func:`._options.connection_options`) and its async function; run the
   latter with :func:`._options.run_sync`. Import rich and the SDK inside the
   command function, so that ``--help`` stays fast.
2. Register it with one line at the end of ``_app.py``:
   ``cli.add_command(watch)`` (after ``from ._watch import watch``).

Its flags then appear in ``external-messages watch --help`` and in the
generated reference page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import cli, main

__all__ = ["cli", "main"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that importing a layer (``cli._format``) does
    # not need click.
    if name in __all__:
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
