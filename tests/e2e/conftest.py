"""The e2e suite runs scenarios on the emulator in this process (the functions in their own workers).

A run is expensive (a few seconds), so each distinct run is made once per session and shared.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator.__main__ import DEMO_SCENARIO, run_scenario
from emulator.core import DEFAULT_TEMPLATE, Options
from emulator.output import Printer
from tests.stack import stack

REPO_ROOT = Path(__file__).resolve().parents[2]
RunScenario = Callable[..., dict[str, Any]]

_RUNS: dict[tuple[Any, ...], dict[str, Any]] = {}


def run(scenario: Path = DEMO_SCENARIO, template: Path = DEFAULT_TEMPLATE, **options: Any) -> dict[str, Any]:
    """The report of a scenario run (quiet), made once per distinct set of arguments."""
    key = (str(scenario), str(template), tuple(sorted(options.items())))
    if key not in _RUNS:
        _RUNS[key] = run_scenario(scenario, Options(template=template, printer=Printer(enabled=False), **options))
    return copy.deepcopy(_RUNS[key])


@pytest.fixture
def run_demo() -> RunScenario:
    return lambda **options: run(DEMO_SCENARIO, **options)


@pytest.fixture(scope="session")
def template_functions() -> set[str]:
    """The functions template.yaml declares now: the chain reaches as far as they go."""
    return set(stack().functions)


def requires(function: str, present: set[str]) -> None:
    # A function missing from template.yaml is a broken chain, not a reason to skip.
    if function not in present:
        pytest.fail(f"{function} is not in template.yaml: the chain stops before it")
