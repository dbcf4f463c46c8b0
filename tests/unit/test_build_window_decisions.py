"""The quiet window's pure parts: reading a settle message, and which pending images a settle builds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_pipeline.config import ImageConfig, RepositoryConfig
from ecr_pipeline.core.build_window import (
    MAX_WAIT_WINDOWS,
    SettleRequest,
    images_to_build,
    is_settle_batch,
    parse_settle_record,
    waited_too_long,
)
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.records import BranchBuild, BranchState, PendingBuild, PushRecord
from tests.events import load_event

HEAD = PushRecord("mono", "branch", "main", "c" * 40, "2026-11-28T10:10:00.000000Z", "push-3#branch#main")
REPOSITORY = RepositoryConfig(
    "mono",
    build_window=60,
    images=(ImageConfig("stack/a", "mono"), ImageConfig("stack/b", "mono")),
)


def names(images: list[ImageConfig]) -> list[str]:
    return [image.ecr_repository for image in images]


def request(push: PushRecord | PendingBuild) -> SettleRequest:
    return SettleRequest("m-1", "123456789012", "us-east-1", "mono", "main", push.push_time, push.push_id)


def test_the_sample_settle_message_reads() -> None:
    event = load_event("build_settle")
    assert is_settle_batch(event)
    settle = parse_settle_record(event["Records"][0], 0)
    assert (settle.repository, settle.branch, settle.account) == ("demo-app", "main", "123456789012")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "deploy-retry"}, "Records[0].body.kind"),
        ({"branch": "a..b"}, "Records[0].body.branch"),
        ({"push_time": "yesterday"}, "Records[0].body.push_time"),
        ({"repository": "../x"}, "Records[0].body.repository"),
    ],
)
def test_a_bad_settle_message_names_the_field(change: dict[str, Any], field: str) -> None:
    record = load_event("build_settle")["Records"][0]
    record["body"] = json.dumps({**json.loads(record["body"]), **change})
    with pytest.raises(MalformedEvent) as error:
        parse_settle_record(record, 0)
    assert error.value.field == field


def test_a_push_event_is_not_a_settle_batch() -> None:
    assert not is_settle_batch(load_event("codecommit_repository_trigger"))
    assert not is_settle_batch(load_event("codecommit_branch_updated"))


def test_the_head_s_own_settle_builds_every_pending_image_and_only_those() -> None:
    pending = PendingBuild("b" * 40, "2026-11-28T10:09:00.000000Z", "push-2#branch#main", since=HEAD.push_time)
    built = BranchBuild("build-b", "b" * 40, pending.push_time, pending.push_id)
    state = BranchState(HEAD, False, {"stack/b": built}, {"stack/a": pending, "stack/b": pending})

    assert names(images_to_build(state, request(HEAD), REPOSITORY)) == ["stack/a"]
    # An older push's settle waits for the head's, unless the head was settled already.
    assert images_to_build(state, request(pending), REPOSITORY) == []
    assert names(images_to_build(state._replace(settled=True), request(pending), REPOSITORY)) == ["stack/a"]


def test_an_image_waits_at_most_five_windows() -> None:
    def pending_since(seconds_before_head: int) -> PendingBuild:
        minute, second = divmod(600 - seconds_before_head, 60)
        since = f"2026-11-28T10:{minute:02d}:{second:02d}.000000Z"
        return PendingBuild("b" * 40, since, "push-1#branch#main", since=since)

    assert not waited_too_long(HEAD, pending_since(MAX_WAIT_WINDOWS * 60 - 1), 60)
    assert waited_too_long(HEAD, pending_since(MAX_WAIT_WINDOWS * 60), 60)
    assert not waited_too_long(HEAD, pending_since(600)._replace(since=None), 60)
