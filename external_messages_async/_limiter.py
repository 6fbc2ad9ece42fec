"""The client-wide cap on requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["Limiter"]


class Limiter:
    """Caps the attempts in flight across every call of one client.

    Args:
        max_concurrency: The most attempts in flight at once, or ``None`` for
            no cap.
    """

    def __init__(self, max_concurrency: int | None = None) -> None:
        if max_concurrency is not None:
            if isinstance(max_concurrency, bool) or not isinstance(
                max_concurrency, int
            ):
                raise TypeError(
                    f"max_concurrency must be an int or None, "
                    f"got {type(max_concurrency).__name__}"
                )
            if max_concurrency < 1:
                raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._semaphore = (
            asyncio.Semaphore(max_concurrency) if max_concurrency is not None else None
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one place for the duration of an attempt."""
        if self._semaphore is None:
            yield
            return
        async with self._semaphore:
            yield

    def on_rate_limited(self, retry_after: float | None) -> None:
        """Note a 429 answer; the bulk limiter slows the whole client down.

        Args:
            retry_after: The server's ``Retry-After`` in seconds, if any.
        """

    def on_success(self) -> None:
        """Note a successful answer."""
