"""Everything the fake server's handlers read and change, in one object.

:class:`~external_messages_async.testing.FakePortSIPServer` owns one
:class:`ServerState` and hands it to the HTTP handlers; neither module imports
the other's internals.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from ._auth import TokenStore
from ._clock import ServerClock
from ._faults import Faults, ScriptedResponse
from ._store import LIST_OPTIONS, MAX_TOP, MessageStore
from ._wire import RecordedRequest

BeforeListPage = Callable[[int, int], Awaitable[None] | None]
"""``hook(skip, top)`` run before a list page is served; may be async."""

OnRequest = Callable[
    [RecordedRequest], Awaitable[ScriptedResponse | None] | ScriptedResponse | None
]
"""``hook(request)`` run for each request not taken by a script; may be async.

It returns the answer to play, or ``None`` for the server's own.
"""


def check_ignore_query(names: Any) -> set[str]:
    """Validate the names of query options a server should ignore.

    Args:
        names: An iterable of option names.

    Returns:
        The names as a new set.

    Raises:
        ValueError: If a name is not one of ``skip``, ``top``, ``filter``,
            ``search`` or ``orderby``.
    """
    found = {names} if isinstance(names, str) else set(names)
    unknown = found - LIST_OPTIONS
    if unknown:
        raise ValueError(
            f"ignore_query names unknown options {sorted(unknown)}; "
            f"known: {', '.join(sorted(LIST_OPTIONS))}"
        )
    return found


def check_max_top(value: int) -> int:
    """Validate a page-size cap.

    Args:
        value: The most items per page.

    Returns:
        ``value``.

    Raises:
        TypeError: If it is not an int.
        ValueError: If it is not between 1 and 100.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"max_top must be an int, got {type(value).__name__}")
    if not 1 <= value <= MAX_TOP:
        raise ValueError(f"max_top must be between 1 and {MAX_TOP}, got {value}")
    return value


@attrs.define(eq=False)
class ServerState:
    """The data, credentials, knobs and records of one fake server.

    Attributes:
        store: The messages and their cached pages.
        tokens: Accepted credentials and issued tokens.
        clock: The server's clock, for new messages.
        max_body_bytes: Largest request body accepted.
        auth_required: Whether data requests need a valid bearer token.
        ignore_query: List options treated as absent.
        max_top: The most items served per page.
        before_list_page: Run before each list page is served.
        on_request: Run for each request no script took; may answer it.
        scripts: Scripted answers not yet consumed, first in first out.
        faults: Random faults; set with :meth:`use_faults`.
        rng: The random source of fault draws.
        closing: Set when the server closes, waking sleeping handlers.
        requests: Every request received, in arrival order.
        in_flight: Requests being handled right now.
        max_in_flight: The most requests ever handled at once.
    """

    store: MessageStore
    tokens: TokenStore
    clock: ServerClock
    max_body_bytes: int
    auth_required: bool = True
    ignore_query: set[str] = attrs.field(factory=set)
    max_top: int = MAX_TOP
    before_list_page: BeforeListPage | None = None
    on_request: OnRequest | None = None
    scripts: collections.deque[ScriptedResponse] = attrs.field(
        factory=collections.deque
    )
    faults: Faults = attrs.field(factory=Faults)
    rng: random.Random = attrs.field(init=False)
    closing: asyncio.Event = attrs.field(factory=asyncio.Event)
    requests: list[RecordedRequest] = attrs.field(factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.faults.seed)

    def use_faults(self, faults: Faults) -> None:
        """Switch fault configuration, restarting its random draws from its seed.

        Args:
            faults: The new configuration.
        """
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def take_script(self, path: str, *, is_data: bool) -> ScriptedResponse | None:
        """Consume the first scripted answer a request may take.

        Args:
            path: The request's decoded path.
            is_data: Whether it is an external messages request.

        Returns:
            The script, now removed from the queue, or ``None``.
        """
        for script in self.scripts:
            if script.matches(path, is_data=is_data):
                self.scripts.remove(script)
                return script
        return None

    def enter(self, request: RecordedRequest) -> None:
        """Record a request arriving and count it in flight.

        Args:
            request: The request as received.
        """
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        """Count a request as answered."""
        self.in_flight -= 1
