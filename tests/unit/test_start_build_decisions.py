from __future__ import annotations

from pathlib import Path

import pytest

from ecr_pipeline.config import load_config
from ecr_pipeline.core.naming import build_tag
from ecr_pipeline.core.start_build import build_environment, idempotency_token, push_ignore_reason
from ecr_pipeline.events.codecommit import RefChange, parse_push_event
from ecr_pipeline.records import BranchBuild, PushRecord, is_newer_push
from tests.events import load_event

CONFIG = load_config(Path(__file__).resolve().parents[2] / "pipeline.yaml")


def change_of(name: str) -> RefChange:
    return parse_push_event(load_event(name))[0]


def push_of(change: RefChange) -> PushRecord:
    assert change.commit_id
    return PushRecord(
        change.repository, change.ref_type, change.ref_name, change.commit_id, change.push_time, change.push_id
    )


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("codecommit_branch_deleted", "was deleted"),
        ("codecommit_merge_commit", "unreferencedMergeCommitCreated"),
        ("codecommit_unknown_repository", "not-configured is not in pipeline.yaml"),
        ("codecommit_branch_outside_filters", "outside the branch filters"),
    ],
)
def test_pushes_that_start_nothing_say_why(event: str, reason: str) -> None:
    assert reason in (push_ignore_reason(change_of(event), CONFIG) or "")


@pytest.mark.parametrize("event", ["codecommit_branch_created", "codecommit_branch_updated", "codecommit_tag_created"])
def test_configured_pushes_are_not_ignored(event: str) -> None:
    assert push_ignore_reason(change_of(event), CONFIG) is None


def test_tag_outside_release_filters_is_ignored() -> None:
    event = load_event("codecommit_tag_created", referenceName="nightly", referenceFullName="refs/tags/nightly")
    assert "outside the release tag filters" in (push_ignore_reason(parse_push_event(event)[0], CONFIG) or "")


def test_redelivered_push_gets_the_same_idempotency_token() -> None:
    image = CONFIG.repositories["demo-app"].images[0]
    first, again = change_of("codecommit_branch_updated"), change_of("codecommit_branch_updated")
    other = change_of("codecommit_branch_created")
    assert idempotency_token(first, image) == idempotency_token(again, image)
    assert idempotency_token(first, image) != idempotency_token(other, image)
    assert len(idempotency_token(first, image)) <= 64


def test_build_environment_names_image_commit_and_branch() -> None:
    change = change_of("codecommit_branch_created")
    repository = CONFIG.repositories["demo-app"]
    uri = "123.dkr.ecr.us-east-1.amazonaws.com/x"
    environment = build_environment(push_of(change), change.region, repository, repository.images[0], uri)
    assert change.commit_id and environment["IMAGE_TAG"] == build_tag(change.commit_id) == f"sha-{change.commit_id}"
    assert environment["SOURCE_BRANCH"] == "feature/Login"
    assert environment["DOCKERFILE"] == "Dockerfile" and environment["BUILD_CONTEXT"] == "."
    assert environment["SOURCE_URL"].endswith("/v1/repos/demo-app")


def test_later_push_time_is_newer_and_push_id_breaks_ties() -> None:
    recorded = BranchBuild("b1", "c1", "2026-11-28T10:00:00.000000Z", "evt-b")

    def build(push_time: str, push_id: str) -> BranchBuild:
        return BranchBuild("b2", "c2", push_time, push_id)

    assert is_newer_push(build("2026-11-28T10:00:01.000000Z", "evt-a"), recorded)
    assert is_newer_push(build("2026-11-28T10:00:00.000000Z", "evt-c"), recorded)
    assert not is_newer_push(build("2026-11-28T10:00:00.000000Z", "evt-b"), recorded)
    assert not is_newer_push(build("2026-11-28T09:59:59.000000Z", "evt-z"), recorded)
