"""pytest plugin providing the ``portsip_server`` fixture.

Installed through the ``pytest11`` entry point, so it loads in every pytest run
of every project that installs this package: it imports nothing heavy until the
fixture is used. The fixture is async, so it needs pytest-asyncio (or another
plugin running async fixtures); without one, only tests that use it fail.

Options for :class:`~external_messages_async.testing.FakePortSIPServer` come
from, in increasing priority, ``portsip_server`` markers (module, class, then
function level) and an indirect parametrization::

    @pytest.mark.portsip_server(messages=10, token_lifetime=1.0)
    async def test_pages(portsip_server): ...

    @pytest.mark.parametrize("portsip_server", [{"messages": 0}], indirect=True)
    async def test_empty(portsip_server): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._server import FakePortSIPServer


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``portsip_server`` marker.

    Args:
        config: The pytest configuration.
    """
    config.addinivalue_line(
        "markers",
        "portsip_server(**options): keyword options for the portsip_server fixture",
    )


def server_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Collect the fixture's server options from markers and parametrization.

    Args:
        request: The fixture request.

    Returns:
        Keyword arguments for ``FakePortSIPServer``.

    Raises:
        TypeError: If an indirect parameter is not a mapping.
    """
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("portsip_server"))):
        options.update(marker.kwargs)
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, Mapping):
            raise TypeError(
                "parametrize portsip_server with dicts of FakePortSIPServer "
                f"options, got {param!r}"
            )
        options.update(param)
    return options


async def _portsip_server(
    request: pytest.FixtureRequest,
) -> AsyncIterator[FakePortSIPServer]:
    """A started FakePortSIPServer, closed after the test.

    Args:
        request: The fixture request.

    Yields:
        The running server.
    """
    from ._server import FakePortSIPServer

    async with FakePortSIPServer(**server_options(request)) as server:
        yield server


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - runs only where pytest-asyncio is missing
    _fixture: Any = pytest.fixture
else:
    # pytest_asyncio.fixture also works in its strict mode, the default one.
    _fixture = pytest_asyncio.fixture

portsip_server = _fixture(_portsip_server, name="portsip_server")
