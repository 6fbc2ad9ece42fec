"""Fixtures and constants shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

#: PortSIP's OpenAPI subset, the contract, vendored in tests/contract/ (see its README).
SPEC = Path(__file__).resolve().parent / "contract" / "openapi-external-messages.json"
