"""The ordering rule, as a property: for K pushes of the default branch, any interleaving and
duplication of their verdict and "Image Promoted" events leaves the environment on the newest
push whose verdict PASSED, and the environment never moves back to an earlier push on the way.

tag_image and deploy run unchanged against moto, so the conditional writes are DynamoDB's own.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ecr_pipeline.adapters.ledger import Ledger
from tests.events import load_event
from tests.handlers import create_pipeline_tables
from tests.integration.image_flow_world import (
    load_function,
    make_ecs_service,
    make_repository,
    put_build_image,
    record_push,
    register_image,
)


def push_time(index: int) -> str:
    return f"2026-11-28T10:{index:02d}:00.000000Z"


def verdict_event(index: int, digest: str, commit: str, passed: bool) -> dict[str, Any]:
    event = load_event(
        "scan_verdict_passed" if passed else "scan_verdict_blocked",
        image_digest=digest,
        commit=commit,
        image_tag=f"sha-{commit}",
    )
    event["id"] = f"verdict-{index}"
    # scan_check records the verdict in the ledger before it tells it; tag_image acts on that.
    register_image(digest, commit, event["detail"]["verdict"], tuple(event["detail"]["reasons"]))
    return event


@settings(max_examples=25)
@given(passed=st.lists(st.booleans(), min_size=2, max_size=4), data=st.data())
def test_environment_ends_on_the_newest_passed_push_and_never_regresses(
    passed: list[bool], data: st.DataObject
) -> None:
    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        create_pipeline_tables()
        make_repository()
        make_ecs_service()
        commits = [f"{index + 1:x}" * 40 for index in range(len(passed))]
        digests = [put_build_image(commit) for commit in commits]
        for index, commit in enumerate(commits):
            record_push(commit=commit, time=push_time(index))
        tag_image = load_function("tag_image", monkeypatch)
        deploy = load_function("deploy", monkeypatch)
        verdicts = [verdict_event(i, digests[i], commits[i], ok) for i, ok in enumerate(passed)]
        ledger = Ledger("ledger")
        seen: list[str] = []

        def environment_time() -> str | None:
            state = ledger.get_environment("demo-app", "dev")
            return state.push_time if state else None

        def deliver_promoted(event: dict[str, Any]) -> None:
            deploy.invoke(event)
            now = environment_time()
            if now is not None:
                assert not seen or now >= seen[-1], f"environment moved back from {seen[-1]} to {now}"
                seen.append(now)

        steps = data.draw(st.lists(st.tuples(st.booleans(), st.integers(0, 100)), max_size=3 * len(passed)))
        for deliver_verdict, pick in steps:
            promoted = tag_image.as_events("Image Promoted")
            if deliver_verdict or not promoted:
                tag_image.invoke(verdicts[pick % len(verdicts)])
            else:
                deliver_promoted(promoted[pick % len(promoted)])

        # Whatever was late or lost so far arrives in the end, in any order.
        for index in data.draw(st.permutations(range(len(verdicts)))):
            tag_image.invoke(verdicts[index])
        promoted = tag_image.as_events("Image Promoted")
        for index in data.draw(st.permutations(range(len(promoted)))):
            deliver_promoted(promoted[index])

        newest_passed = max((i for i, ok in enumerate(passed) if ok), default=None)
        state = ledger.get_environment("demo-app", "dev")
        if newest_passed is None:
            assert state is None
        else:
            assert state is not None
            assert (state.push_time, state.image_digest) == (push_time(newest_passed), digests[newest_passed])
            assert state.deployment_id
