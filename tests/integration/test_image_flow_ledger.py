"""The ledger's image-flow items against moto's DynamoDB: the conditional writes that order tags
and environments, and the image item that a verdict and a registration both complete."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.records import EnvironmentState, ImageRecord, PushRecord
from tests.handlers import create_pipeline_tables


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with mock_aws():
        create_pipeline_tables()
        yield Ledger("ledger")


def candidate(time: str, push_id: str = "id", digest: str = "sha256:aa") -> EnvironmentState:
    return EnvironmentState("demo-app", "dev", digest, "c" * 40, "branch", "main", time, push_id)


def push(time: str, push_id: str = "id") -> PushRecord:
    return PushRecord("demo-app", "branch", "main", "c" * 40, time, push_id)


def test_verdict_recorded_before_registration_is_kept_by_it(ledger: Ledger) -> None:
    ledger.record_verdict("demo-app", "sha256:aa", "PASSED", ["ok"], "basic")
    ledger.record_image(ImageRecord("demo-app", "sha256:aa", commit="c" * 40, codecommit_repository="demo-app"))

    image = ledger.get_image("demo-app", "sha256:aa")

    assert image is not None and (image.verdict, image.commit) == ("PASSED", "c" * 40)
    assert image.verdict_reasons == ("ok",)


def test_tag_claim_refuses_an_older_push_and_grants_the_same_push_again(ledger: Ledger) -> None:
    assert ledger.claim_tag("demo-app", "main", "sha256:bb", push("2026-11-28T10:02:00.000000Z"))

    assert not ledger.claim_tag("demo-app", "main", "sha256:aa", push("2026-11-28T10:01:00.000000Z"))
    assert ledger.claim_tag("demo-app", "main", "sha256:bb", push("2026-11-28T10:02:00.000000Z"))


def test_equal_push_times_are_ordered_by_push_id(ledger: Ledger) -> None:
    assert ledger.claim_tag("demo-app", "main", "sha256:bb", push("2026-11-28T10:02:00.000000Z", "b"))

    assert not ledger.claim_tag("demo-app", "main", "sha256:aa", push("2026-11-28T10:02:00.000000Z", "a"))


def test_environment_claim_refuses_an_older_candidate_and_returns_the_newer(ledger: Ledger) -> None:
    ledger.claim_environment(candidate("2026-11-28T10:02:00.000000Z", digest="sha256:bb"))

    claimed, stored = ledger.claim_environment(candidate("2026-11-28T10:01:00.000000Z"))

    assert not claimed and stored is not None and stored.image_digest == "sha256:bb"


def test_environment_claim_by_the_same_candidate_is_granted_until_its_deployment_exists(ledger: Ledger) -> None:
    first = candidate("2026-11-28T10:02:00.000000Z")
    ledger.claim_environment(first)
    ledger.update_environment(first, task_definition_arn="arn:td:7")

    again, stored = ledger.claim_environment(first)
    ledger.update_environment(first, deployment_id="d-1")
    after_deployment, _ = ledger.claim_environment(first)

    assert again and stored is not None and stored.task_definition_arn == "arn:td:7"
    assert not after_deployment


def test_update_of_a_superseded_candidate_changes_nothing(ledger: Ledger) -> None:
    older, newer = candidate("2026-11-28T10:01:00.000000Z"), candidate("2026-11-28T10:02:00.000000Z", "n")
    ledger.claim_environment(older)
    ledger.claim_environment(newer)

    assert not ledger.update_environment(older, deployment_id="d-old")
    state = ledger.get_environment("demo-app", "dev")
    assert state is not None and state.deployment_id is None and state.push_id == "n"
