"""The one push order (records.py): what every "newer than" in core and the ledger uses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.records import BranchBuild, EnvironmentState, PushRecord, is_newer_push, is_same_push, newest_push

TIMES = st.sampled_from(["2026-11-28T09:59:59.000000Z", "2026-11-28T10:00:00.000000Z", "2026-11-28T10:00:01.000000Z"])
IDS = st.sampled_from(["evt-a", "evt-b", "evt-c"])


def build(push_time: str, push_id: str) -> BranchBuild:
    return BranchBuild("b", "c", push_time, push_id)


@given(TIMES, IDS, TIMES, IDS)
def test_exactly_one_of_newer_older_or_same_holds(time_a: str, id_a: str, time_b: str, id_b: str) -> None:
    a, b = build(time_a, id_a), build(time_b, id_b)

    assert [is_newer_push(a, b), is_newer_push(b, a), is_same_push(a, b)].count(True) == 1
    assert is_newer_push(a, b) == (time_a > time_b or (time_a == time_b and id_a > id_b))


def test_newest_push_is_the_latest_time_then_the_greatest_id() -> None:
    pushes = [build("2026-11-28T10:00:00.000000Z", "evt-c"), build("2026-11-28T10:00:01.000000Z", "evt-a")]
    tie = [build("2026-11-28T10:00:00.000000Z", "evt-a"), build("2026-11-28T10:00:00.000000Z", "evt-b")]

    assert newest_push(pushes) == pushes[1]
    assert newest_push(tie) == tie[1]
    assert newest_push([]) is None


def test_an_environment_candidate_gives_back_its_push_with_author_and_message() -> None:
    push = PushRecord("demo-app", "branch", "main", "c1", "2026-11-28T10:00:00.000000Z", "p1", "Ada", "Add login")
    fields = ("demo-app", "dev", "sha256:1", "c1", "branch", "main", push.push_time, push.push_id)
    candidate = EnvironmentState(*fields, author="Ada", message="Add login")

    assert candidate.push("demo-app") == push
    assert candidate.same_push(push)
