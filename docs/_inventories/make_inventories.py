"""Write the small intersphinx inventories the docs build reads offline.

The docs link to the Python, aiohttp, attrs and cattrs documentation, but the
machines that build them cannot download those projects' ``objects.inv``. This
script writes one inventory per project, in Sphinx's own format (version 2,
zlib-compressed), listing only the names these docs refer to, with their real
addresses on each project's site. ``conf.py`` pairs each file with the site's
real URL, so the links in the built pages go to the real documentation.

Run it after adding a name (``python docs/_inventories/make_inventories.py``)
and commit the ``.inv`` files it writes; ``--check`` fails when they are stale.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

HERE = Path(__file__).parent

# (name, domain:role, page#anchor); "$" in the address stands for the name.
Entry = tuple[str, str, str]


def _py(names: str, role: str, page: str) -> list[Entry]:
    return [(name, f"py:{role}", f"{page}#$") for name in names.split()]


PYTHON: list[Entry] = [
    *_py("asyncio.run", "function", "library/asyncio-runner.html"),
    *_py(
        "asyncio.gather asyncio.wait_for asyncio.timeout asyncio.sleep",
        "function",
        "library/asyncio-task.html",
    ),
    *_py("asyncio.Task asyncio.TaskGroup", "class", "library/asyncio-task.html"),
    *_py("asyncio.Event", "class", "library/asyncio-sync.html"),
    *_py(
        "asyncio.CancelledError asyncio.TimeoutError",
        "exception",
        "library/asyncio-exceptions.html",
    ),
    *_py("contextlib.aclosing", "function", "library/contextlib.html"),
    *_py("ssl.SSLContext", "class", "library/ssl.html"),
    *_py("ssl.create_default_context", "function", "library/ssl.html"),
    *_py(
        "datetime.datetime datetime.date datetime.timedelta",
        "class",
        "library/datetime.html",
    ),
    *_py("enum.Enum", "class", "library/enum.html"),
    *_py("logging.getLogger", "function", "library/logging.html"),
    *_py("logging.Logger", "class", "library/logging.html"),
    *_py("random.Random", "class", "library/random.html"),
    *_py("threading.Thread", "class", "library/threading.html"),
    *_py(
        "collections.abc.Iterable collections.abc.Iterator collections.abc.Mapping "
        "collections.abc.Sequence collections.abc.Collection collections.abc.Callable "
        "collections.abc.Awaitable collections.abc.AsyncIterator collections.abc.Coroutine",
        "class",
        "library/collections.abc.html",
    ),
    *_py(
        "typing.Protocol typing.Generic typing.Any typing.Literal",
        "data",
        "library/typing.html",
    ),
    *_py(
        "Exception RuntimeError TypeError ValueError KeyboardInterrupt",
        "exception",
        "library/exceptions.html",
    ),
    *_py("str bytes", "class", "library/stdtypes.html"),
    *_py("int float bool", "class", "library/functions.html"),
    *_py("dict list tuple set", "class", "library/stdtypes.html"),
    *_py("None", "data", "library/constants.html"),
]

AIOHTTP: list[Entry] = [
    *_py(
        "aiohttp.ClientSession aiohttp.ClientTimeout aiohttp.TCPConnector",
        "class",
        "client_reference.html",
    ),
    *_py("aiohttp.ClientError", "exception", "client_reference.html"),
    # Where autodoc finds the class, in annotations: same page and anchor.
    (
        "aiohttp.client.ClientSession",
        "py:class",
        "client_reference.html#aiohttp.ClientSession",
    ),
    *_py("aiohttp.web.Application", "class", "web_reference.html"),
    *_py("aiohttp.TraceConfig", "class", "tracing_reference.html"),
    (
        "aiohttp.tracing.TraceConfig",
        "py:class",
        "tracing_reference.html#aiohttp.TraceConfig",
    ),
]

ATTRS: list[Entry] = [
    *_py("attrs.frozen attrs.define attrs.evolve attrs.field", "function", "api.html"),
]

CATTRS: list[Entry] = [
    *_py("cattrs.Converter", "class", "cattrs.html"),
    *_py("cattrs.transform_error", "function", "cattrs.html"),
    ("cattrs.converters.Converter", "py:class", "cattrs.html#cattrs.Converter"),
]

PROJECTS = {
    "python": ("Python", "3", PYTHON),
    "aiohttp": ("aiohttp", "stable", AIOHTTP),
    "attrs": ("attrs", "stable", ATTRS),
    "cattrs": ("cattrs", "stable", CATTRS),
}


def render(project: str, version: str, entries: list[Entry]) -> bytes:
    """Return an inventory file's bytes, in Sphinx's version 2 format."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    lines = "".join(
        f"{name} {role} 1 {uri} -\n" for name, role, uri in sorted(set(entries))
    )
    return header + zlib.compress(lines.encode(), 9)


def main(argv: list[str]) -> int:
    """Write (or with ``--check``, compare) every inventory; return the exit code."""
    check = "--check" in argv
    stale = []
    for stem, (project, version, entries) in PROJECTS.items():
        path = HERE / f"{stem}.inv"
        data = render(project, version, entries)
        if check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(path.name)
        else:
            path.write_bytes(data)
            print(
                f"wrote {path.relative_to(HERE.parent.parent)} ({len(entries)} names)"
            )
    if stale:
        print("stale inventories, run make_inventories.py:", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
