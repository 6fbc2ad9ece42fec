"""Response metadata on success: ``client.with_raw_response`` and :class:`APIResponse`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Generic, TypeVar

import attrs

from ._auth import RawResponse
from .errors import request_id_of

__all__ = ["APIResponse"]

_T = TypeVar("_T")


@attrs.frozen
class APIResponse(Generic[_T]):
    """A successful answer with its metadata; :meth:`parse` gives the model.

    Returned by ``client.with_raw_response.get(...)`` and
    ``client.with_raw_response.get_page(...)``. The request id is what to quote
    to PortSIP support about a call.

    Attributes:
        status: The HTTP status of the final attempt.
        headers: The response headers (case-insensitive).
        request_id: The ``X-Request-Id`` (or ``X-Correlation-Id``,
            ``Request-Id``) the PBX or its proxy sent, or ``None``.
        elapsed: From the start of the call to its answer, retries and their
            waits included.
        attempts: How many attempts the call made (1 without retries).
    """

    status: int
    headers: Mapping[str, str]
    request_id: str | None
    elapsed: timedelta
    attempts: int
    _body: bytes = attrs.field(repr=False, alias="body")
    _parser: Callable[[bytes], _T] = attrs.field(repr=False, alias="parser")

    @classmethod
    def of(
        cls, response: RawResponse, parser: Callable[[bytes], _T]
    ) -> APIResponse[_T]:
        """Wrap a call's final answer.

        Args:
            response: The successful answer.
            parser: Turns the body into the model.

        Returns:
            The response with its metadata.
        """
        return cls(
            status=response.status,
            headers=response.headers,
            request_id=request_id_of(response.headers),
            elapsed=timedelta(seconds=response.elapsed),
            attempts=response.attempts,
            body=response.body,
            parser=parser,
        )

    def parse(self) -> _T:
        """Decode the body into the model, as the plain call would return it.

        Returns:
            The model (an ``ExternalMessage``, or a ``Page``).

        Raises:
            ResponseDecodeError: The body is not what PortSIP documents.
        """
        return self._parser(self._body)
