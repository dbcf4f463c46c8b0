"""Hostile input, fast tier: a few hundred seeded mutations of the events/ samples per handler,
each handler invoked against moto. No exception escapes, a rejected event writes nothing, and
every rejection names its field (tests/fuzz.py). The slow tier (tests/e2e) runs thousands."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.fuzz import HANDLERS, check_fuzzed, samples_for

MUTATIONS = 300
SEED = 10


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.parametrize("handler", HANDLERS)
def test_mutated_samples_are_acted_on_ignored_or_rejected_naming_the_field(
    handler: str, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each mutation of the handler's samples is acted on, ignored or rejected cleanly (tests/fuzz.py)
    check_fuzzed(handler, monkeypatch, MUTATIONS, SEED)


@pytest.mark.parametrize("handler", HANDLERS)
def test_every_handler_has_samples_to_fuzz(handler: str) -> None:
    assert samples_for(handler)
