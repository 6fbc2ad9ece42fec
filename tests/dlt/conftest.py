"""The dlt tests need the ``dlt`` extra and DuckDB: ``nox -s dlt`` installs them."""

from __future__ import annotations

import pytest

pytest.importorskip("dlt", reason="the dlt extra is not installed (nox -s dlt)")
pytest.importorskip("duckdb", reason="DuckDB is not installed (nox -s dlt)")


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    # dlt reports anonymous usage over the network by default; tests stay local.
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
