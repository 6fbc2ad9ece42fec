"""Sphinx configuration: MyST Markdown pages, autodoc from the docstrings, furo.

Build with ``nox -s docs`` (which first runs every example with
``docs/run_examples.py``), or directly::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import enum
import types
from pathlib import Path
from typing import Any, Generic

from sphinx.pycode import ModuleAnalyzer
from sphinx.util.inspect import safe_getattr

import external_messages_async
from external_messages_async import __version__

DOCS = Path(__file__).parent

project = "external_messages_async"
author = "external_messages_async developers"
copyright = "external_messages_async developers"
release = __version__
version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    # reference/cli.md: every command and flag, read from the click commands.
    "sphinx_click",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "_examples", "Thumbs.db", ".DS_Store"]

# -- MyST --------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# -- autodoc and napoleon (Google-style docstrings) --------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# "Bases:" lines only where they say something: exceptions and the enums.
autodoc_default_options = {"members": True}
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# Every cross-reference must resolve: a broken link in the reference is a
# build error, like any other warning under -W.
nitpicky = True
nitpick_ignore = [
    # Type variables and private aliases in signatures: not documented objects.
    ("py:class", "T"),
    ("py:class", "_E"),
    ("py:class", "external_messages_async._models.T"),
    ("py:class", "external_messages_async._pagination.FetchPage"),
    ("py:class", "FetchPage"),
    ("py:class", "_Messages"),
    ("py:class", "_Results"),
    ("py:class", "external_messages_async._client._Messages"),
    ("py:class", "external_messages_async._client._Results"),
    ("py:obj", "external_messages_async._models.T"),
    ("py:class", "external_messages_async._response._T"),
    # What MessagePager.pages() returns: an async iterator of pages with
    # aclose(), described there; the class itself is not public.
    ("py:class", "external_messages_async._pagination.PageWalk"),
    # The same for scans and change feeds (described in MessageScan.pages()
    # and ChangeFeed.pages()), and the page record ScanStats.add() takes.
    ("py:class", "external_messages_async._keywalk.ScanPages"),
    ("py:class", "external_messages_async._keywalk.FetchKeyPage"),
    ("py:class", "FetchKeyPage"),
    ("py:class", "external_messages_async._changes.ChangePages"),
    ("py:class", "external_messages_async._scan.Step"),
    # What external_messages_async.dlt.external_messages returns; dlt's docs
    # publish no Sphinx inventory to link to.
    ("py:class", "dlt.extract.resource.DltResource"),
    ("py:class", "DltResource"),
    # orjson publishes no Sphinx inventory to link to.
    ("py:exc", "orjson.JSONDecodeError"),
]

# -- intersphinx, offline -----------------------------------------------------
# This machine and CI have no network apart from the package registries, so
# Sphinx cannot download objects.inv from docs.python.org and the others.
# Links still point at the real documentation sites (the first element of each
# pair); the inventories Sphinx reads are small local files in _inventories/,
# written by _inventories/make_inventories.py from the list of external names
# these docs refer to. Add a name there (and rerun it) when a page or a
# docstring links to a new one; nitpicky mode above reports any that is missing.
_INV = DOCS / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(_INV / "python.inv")),
    "aiohttp": ("https://docs.aiohttp.org/en/stable", str(_INV / "aiohttp.inv")),
    "attrs": ("https://www.attrs.org/en/stable", str(_INV / "attrs.inv")),
    "cattrs": ("https://catt.rs/en/stable", str(_INV / "cattrs.inv")),
}
intersphinx_timeout = 1


def _public_bases(
    app: object, name: str, obj: object, options: object, bases: list[type]
) -> None:
    """Show the public meaning of a private base class in "Bases:" lines."""
    from external_messages_async._models import OpenEnum

    if OpenEnum in bases:
        bases[:] = [str, enum.Enum]
    bases[:] = [
        base for base in bases if getattr(base, "__origin__", None) is not Generic
    ]


def _defining_module(name: str) -> str | None:
    """The private module that defines a public name of the package root.

    Public names report ``__module__ == "external_messages_async"``, the path
    users import from; autodoc and viewcode need the file that holds the
    source instead, for ``#:`` attribute comments, the source order of
    members and the [source] links.
    """
    home = external_messages_async._HOMES.get(name.partition(".")[0])
    return None if home is None else external_messages_async.__name__ + home


def _source_getattr(obj: Any, name: str, *default: Any) -> Any:
    """autodoc's getattr: ``__module__`` of an adopted public name is its source."""
    if (
        name == "__module__"
        and safe_getattr(obj, "__module__", None) == external_messages_async.__name__
    ):
        home = _defining_module(safe_getattr(obj, "__qualname__", ""))
        if home is not None:
            return home
    return safe_getattr(obj, name, *default)


def _follow_to_source(app: object, modname: str, fullname: str) -> str | None:
    """viewcode: link a public name's [source] to the module that defines it."""
    if modname != external_messages_async.__name__:
        return None
    return _defining_module(fullname)


def _lend_source_analysis() -> None:
    """Let the root's source analysis answer for the names the root adopted.

    Parts of autodoc look up ``#:`` attribute comments and the source order
    of members in the module a class's ``__module__`` names, which is the
    package root for every public class. The root defines none of them, so
    its (cached) analysis gets theirs: the keys are qualified names, which do
    not clash between the modules.
    """
    root = ModuleAnalyzer.for_module(external_messages_async.__name__)
    root.analyze()
    for home in sorted(set(external_messages_async._HOMES.values())):
        source = ModuleAnalyzer.for_module(external_messages_async.__name__ + home)
        source.analyze()
        root.attr_docs.update(source.attr_docs)
        root.tagorder.update(source.tagorder)
        root.annotations.update(source.annotations)


def setup(app: Any) -> None:
    """Connect the hooks above."""
    _lend_source_analysis()
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("viewcode-follow-imported", _follow_to_source)
    for kind in (type, types.FunctionType):
        app.add_autodoc_attrgetter(kind, _source_getattr)


# -- HTML --------------------------------------------------------------------
html_theme = "furo"
html_title = f"external_messages_async {__version__}"
html_static_path: list[str] = []
pygments_style = "sphinx"
pygments_dark_style = "monokai"
