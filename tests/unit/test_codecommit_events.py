from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.events.codecommit import parse_push_event
from ecr_pipeline.events.envelope import MalformedEvent
from tests.events import load_event


def test_branch_update_is_parsed_with_both_commits() -> None:
    (change,) = parse_push_event(load_event("codecommit_branch_updated"))
    assert (change.repository, change.ref_type, change.ref_name) == ("demo-app", "branch", "main")
    assert change.commit_id.startswith("a3b2") and change.old_commit_id and change.old_commit_id.startswith("5f1c")
    assert change.push_time == "2026-11-28T10:05:00.000000Z"


def test_tag_push_is_parsed_as_tag() -> None:
    (change,) = parse_push_event(load_event("codecommit_tag_created"))
    assert (change.ref_type, change.ref_name, change.old_commit_id) == ("tag", "v1.2.3", None)


def test_deleted_branch_has_no_commit() -> None:
    (change,) = parse_push_event(load_event("codecommit_branch_deleted"))
    assert change.action == "referenceDeleted" and change.commit_id is None


def test_repository_trigger_shape_is_parsed_like_a_state_change() -> None:
    (change,) = parse_push_event(load_event("codecommit_repository_trigger"))
    assert (change.repository, change.ref_type, change.ref_name) == ("demo-app", "branch", "main")
    assert change.account == "123456789012" and change.region == "us-east-1"
    assert change.push_time == "2026-11-28T10:40:00.000000Z"


def test_push_times_of_both_shapes_compare_in_time_order() -> None:
    (update,) = parse_push_event(load_event("codecommit_branch_updated"))
    (trigger,) = parse_push_event(load_event("codecommit_repository_trigger"))
    assert update.push_time < trigger.push_time


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("referenceName", None, "detail.referenceName"),
        ("referenceType", "note", "detail.referenceType"),
        ("commitId", 42, "detail.commitId"),
        ("repositoryName", "", "detail.repositoryName"),
    ],
)
def test_malformed_detail_names_the_field(field: str, value: Any, named: str) -> None:
    event = load_event("codecommit_branch_updated")
    if value is None:
        del event["detail"][field]
    else:
        event["detail"][field] = value
    with pytest.raises(MalformedEvent) as raised:
        parse_push_event(event)
    assert raised.value.field == named


def test_missing_event_time_is_malformed() -> None:
    event = load_event("codecommit_branch_updated")
    event["time"] = "yesterday"
    with pytest.raises(MalformedEvent, match="time must be an ISO 8601 time"):
        parse_push_event(event)


def test_other_detail_type_is_malformed() -> None:
    event = load_event("codecommit_branch_updated")
    event["detail-type"] = "CodeCommit Pull Request State Change"
    with pytest.raises(MalformedEvent, match="detail-type"):
        parse_push_event(event)


def test_trigger_record_with_a_bad_ref_names_it() -> None:
    event = load_event("codecommit_repository_trigger")
    event["Records"][0]["codecommit"]["references"][0]["ref"] = "refs/notes/x"
    with pytest.raises(MalformedEvent) as raised:
        parse_push_event(event)
    assert raised.value.field == "Records[0].codecommit.references[0].ref"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(["detail", "id", "time", "region", "account", "detail-type", "Records"]), json_values
    )
)
def test_arbitrary_input_is_parsed_or_rejected_as_malformed(event: dict[str, Any]) -> None:
    try:
        parse_push_event(event)
    except MalformedEvent as error:
        assert error.field
