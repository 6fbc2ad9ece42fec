"""A fake PortSIP PBX for testing code that reads external messages.

:class:`FakePortSIPServer` serves PortSIP's external messages API over loopback
HTTP with realistic seeded data (:func:`generate_messages`), real login and
bearer-token checks, an OData filter, search and ordering, and knobs for the
failures a client must survive: random :class:`Faults` and one-off
:class:`ScriptedResponse` answers. Its data can change while a client reads
it: messages arrive (stamped by a :class:`ServerClock` the test moves), change
delivery state and disappear. Every request is kept as a
:class:`RecordedRequest`. It works on plain JSON and does not use the client.

Installing this package also gives pytest a ``portsip_server`` fixture (see
``external_messages_async.testing._plugin``; it needs pytest-asyncio).

Example:
    >>> import asyncio, aiohttp
    >>> async def count_sms() -> int:
    ...     async with FakePortSIPServer(messages=50, seed=1) as server:
    ...         async with aiohttp.ClientSession() as session:
    ...             response = await session.get(
    ...                 server.api_url + "/external_messages",
    ...                 params={"filter": "msg_type eq 'SMS'", "top": "10"},
    ...                 headers={"Authorization": f"Bearer {server.token}"},
    ...             )
    ...             page = await response.json()
    ...     return page["count"]
    >>> asyncio.run(count_sms()) == sum(
    ...     m["msg_type"] == "SMS" for m in generate_messages(50, seed=1)
    ... )
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._clock import ServerClock
    from ._data import MESSAGE_FIELDS, generate_messages
    from ._faults import Faults, ScriptedResponse
    from ._server import FakePortSIPServer, ListPageHook, RequestHook
    from ._wire import RecordedRequest

__all__ = [
    "FakePortSIPServer",
    "Faults",
    "ListPageHook",
    "MESSAGE_FIELDS",
    "RecordedRequest",
    "RequestHook",
    "ScriptedResponse",
    "ServerClock",
    "generate_messages",
]

# Imported on first use: the pytest plugin imports this package in every test
# run of every project that installs us, and most never touch the server.
_HOMES = {
    "MESSAGE_FIELDS": "._data",
    "FakePortSIPServer": "._server",
    "Faults": "._faults",
    "ListPageHook": "._server",
    "RecordedRequest": "._wire",
    "RequestHook": "._server",
    "ScriptedResponse": "._faults",
    "ServerClock": "._clock",
    "generate_messages": "._data",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
