"""Fixtures of the dlt tests; they need the ``dlt`` extra and DuckDB (``nox -s dlt``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    # dlt reports anonymous usage over the network by default; tests stay local.
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
