"""Hostile input, slow tier: thousands of seeded mutations of the events/ samples per handler,
each handler invoked against moto as in tests/integration/test_fuzz_handlers.py, with other seeds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.fuzz import HANDLERS, check_fuzzed

pytestmark = pytest.mark.e2e

MUTATIONS = 3000
SEED = 1010


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.parametrize("handler", HANDLERS)
def test_thousands_of_mutated_samples_are_acted_on_ignored_or_rejected_naming_the_field(
    handler: str, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each mutation of the handler's samples is acted on, ignored or rejected cleanly (tests/fuzz.py)
    check_fuzzed(handler, monkeypatch, MUTATIONS, SEED)
