"""Fixtures and checks shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: PortSIP's OpenAPI subset, the contract; it lives beside the repository.
SPEC = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "portsip"
    / "openapi-external-messages.json"
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI, refuse to run without the spec: contract tests would only skip."""
    if os.environ.get("CI") and not SPEC.is_file():
        raise pytest.UsageError(f"CI run without the PortSIP spec at {SPEC}")
