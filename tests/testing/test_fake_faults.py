"""Fault configuration and the pure fault decision."""

from __future__ import annotations

import random

import attrs
import pytest

from external_messages_async.testing import Faults, ScriptedResponse
from external_messages_async.testing._faults import FaultKind, draw_fault


def test_no_rates_means_no_fault_and_no_draws() -> None:
    rng = random.Random(0)
    state = rng.getstate()

    assert draw_fault(Faults(), rng) is None
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("knob", "kind"),
    [
        ("rate_drop", FaultKind.DROP),
        ("rate_500", FaultKind.PROXY_500),
        ("rate_503", FaultKind.UNAVAILABLE_503),
        ("rate_429", FaultKind.RATE_LIMITED_429),
        ("rate_malformed", FaultKind.MALFORMED),
    ],
)
def test_a_rate_of_one_always_fires(knob: str, kind: FaultKind) -> None:
    faults = Faults(**{knob: 1.0})

    assert {draw_fault(faults, random.Random(n)) for n in range(20)} == {kind}


def test_earlier_knobs_win_when_several_fire() -> None:
    faults = Faults(rate_drop=1.0, rate_500=1.0)

    assert draw_fault(faults, random.Random(0)) is FaultKind.DROP


def test_draws_are_reproducible_from_the_seed() -> None:
    faults = Faults(rate_500=0.5, seed=9)

    def run() -> list[FaultKind | None]:
        rng = random.Random(faults.seed)
        return [draw_fault(faults, rng) for _ in range(50)]

    assert run() == run()
    assert set(run()) == {None, FaultKind.PROXY_500}


@pytest.mark.parametrize(
    "kwargs", [{"rate_429": 1.5}, {"rate_drop": -0.1}, {"latency": -1.0}]
)
def test_out_of_range_knobs_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Faults(**kwargs)


def test_faults_are_frozen_and_evolve() -> None:
    faults = Faults(latency=0.1)

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        faults.latency = 0.2  # type: ignore[misc]  # assigning to a frozen value on purpose
    assert attrs.evolve(faults, rate_503=1.0).latency == 0.1


@pytest.mark.parametrize(
    "kwargs", [{"status": 99}, {"status": 600}, {"trickle": 0.0}, {"delay": -1.0}]
)
def test_invalid_scripts_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ScriptedResponse(**kwargs)  # type: ignore[arg-type]  # wrong on purpose


def test_scripts_without_path_match_data_requests_only() -> None:
    script = ScriptedResponse(status=503)

    assert script.matches("/api/external_messages", is_data=True)
    assert not script.matches("/api/login/oauth/token", is_data=False)


def test_scripts_with_path_match_by_prefix() -> None:
    script = ScriptedResponse(status=503, path="/api/login")

    assert script.matches("/api/login/oauth/token", is_data=False)
    assert not script.matches("/api/external_messages", is_data=True)
