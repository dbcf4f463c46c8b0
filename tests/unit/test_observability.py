"""The handlers' observability: one naming scheme for outcome metrics, bounded dimensions, and the push
named on every log line of an invocation (and never carried into the next)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from ecr_pipeline.observability import (
    MAX_CORRELATION_ID,
    MAX_TRACE_VALUE,
    begin,
    count,
    count_outcome,
    logger,
    metric_name,
    metrics,
    trace,
    trace_push,
    trace_subject,
    traced,
    untrace,
)
from ecr_pipeline.records import PushRecord
from tests.handlers import FakeLambdaContext


@pytest.mark.parametrize(
    ("kind", "status", "name"),
    [
        ("Deployments", "started", "DeploymentsStarted"),
        ("Deployments", "already deployed", "DeploymentsAlreadyDeployed"),
        ("Builds", "skipped", "BuildsSkipped"),
        ("Verdict", "PASSED", "VerdictPassed"),
        ("TagImage", "not_found", "TagImageNotFound"),
    ],
)
def test_outcome_metric_names_are_the_kind_and_the_status_in_pascal_case(kind: str, status: str, name: str) -> None:
    assert metric_name(kind, status) == name


# --- tracing: the push on every log line ---------------------------------------------------------


@pytest.fixture
def fresh_logger() -> Iterator[None]:
    logger.clear_state()
    yield
    logger.clear_state()


PUSH = PushRecord("demo-app", "branch", "main", "a" * 40, "2026-11-28T10:00:00Z", "event-1#branch#main")


class Subject(NamedTuple):
    repository: str
    commit: str | None
    image_digest: str | None
    push: PushRecord | None


def test_begin_names_the_event_and_no_push(fresh_logger: None) -> None:
    begin({"id": "0b1c2d3e-event"})

    keys = logger.get_current_keys()

    assert keys.get("event_id") == "0b1c2d3e-event"
    assert traced() == {}
    assert keys.get("correlation_id") is None


@pytest.mark.parametrize("event_id", [{"nested": "id"}, "x" * (MAX_CORRELATION_ID + 1), "", None, 42])
def test_begin_never_puts_a_hostile_event_id_on_a_line(fresh_logger: None, event_id: object) -> None:
    begin({"id": event_id})

    assert logger.get_current_keys().get("event_id") is None


def test_begin_reads_no_id_from_an_event_that_is_not_a_mapping(fresh_logger: None) -> None:
    begin(["not", "an", "event"])

    assert logger.get_current_keys().get("event_id") is None


def test_trace_names_the_push_and_makes_it_the_correlation_id(fresh_logger: None) -> None:
    trace(push_id=PUSH.push_id, repository=PUSH.repository, commit=PUSH.commit)

    assert traced() == {"push_id": PUSH.push_id, "repository": "demo-app", "commit": PUSH.commit}
    assert logger.get_current_keys()["correlation_id"] == PUSH.push_id


def test_trace_keeps_what_it_is_not_given(fresh_logger: None) -> None:
    trace(push_id=PUSH.push_id, commit=PUSH.commit)

    trace(image_digest="sha256:" + "b" * 64)

    assert traced() == {"push_id": PUSH.push_id, "commit": PUSH.commit, "image_digest": "sha256:" + "b" * 64}


def test_trace_leaves_an_overlong_value_off_rather_than_cut(fresh_logger: None) -> None:
    trace(push_id="p" * (MAX_TRACE_VALUE + 1), commit=PUSH.commit)

    assert traced() == {"commit": PUSH.commit}
    assert logger.get_current_keys().get("correlation_id") is None


def test_trace_subject_names_the_subjects_push_and_image(fresh_logger: None) -> None:
    trace_subject(Subject("demo-app", PUSH.commit, "sha256:" + "c" * 64, PUSH))

    assert traced() == {
        "push_id": PUSH.push_id,
        "repository": "demo-app",
        "commit": PUSH.commit,
        "image_digest": "sha256:" + "c" * 64,
    }


def test_trace_subject_without_a_push_names_the_commit_only(fresh_logger: None) -> None:
    trace_subject(Subject("demo-app", PUSH.commit, None, None))

    assert traced() == {"repository": "demo-app", "commit": PUSH.commit}


def test_untrace_forgets_the_push_for_the_next_item_of_a_batch(fresh_logger: None) -> None:
    begin({"id": "event-1"})
    trace_push(PUSH, "sha256:" + "d" * 64)

    untrace()

    assert traced() == {}
    assert logger.get_current_keys().get("correlation_id") is None
    assert logger.get_current_keys().get("event_id") == "event-1"


def test_a_warm_worker_does_not_carry_the_last_push_into_the_next_invocation(fresh_logger: None) -> None:
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
        begin(event)
        if event.get("push"):
            trace_push(PUSH)
        return {**traced(), "correlation_id": str(logger.get_current_keys().get("correlation_id"))}

    first = handler({"id": "event-1", "push": True}, FakeLambdaContext())
    second = handler({"id": "event-2"}, FakeLambdaContext())

    assert first["push_id"] == PUSH.push_id
    assert second == {"correlation_id": "None"}


# --- metrics: bounded dimensions --------------------------------------------------------------


def emf_entries(output: str) -> list[dict[str, Any]]:
    return [entry for entry in map(json.loads, filter(None, output.splitlines())) if "_aws" in entry]


def test_a_count_with_dimensions_is_its_own_entry_with_those_dimensions(capsys: pytest.CaptureFixture[str]) -> None:
    count("NotificationsDelivered", channel="slack")

    (entry,) = emf_entries(capsys.readouterr().out)
    (block,) = entry["_aws"]["CloudWatchMetrics"]

    assert block["Metrics"] == [{"Name": "NotificationsDelivered", "Unit": "Count"}]
    assert sorted(block["Dimensions"][0]) == ["channel", "service"]
    assert entry["channel"] == "slack" and entry["NotificationsDelivered"] == [1.0]


def test_a_dimension_without_a_value_is_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    count_outcome("Deployments", "started", repository="ecr-pipeline/demo-app", environment=None)

    (entry,) = emf_entries(capsys.readouterr().out)

    assert sorted(entry["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["repository", "service"]
    assert "environment" not in entry
    assert entry["DeploymentsStarted"] == [1.0]


def test_a_count_without_dimensions_joins_the_invocations_metric_set(capsys: pytest.CaptureFixture[str]) -> None:
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> None:
        count("EventsRejected")
        count_outcome("Pushes", "ignored")

    handler({}, FakeLambdaContext())

    (entry,) = emf_entries(capsys.readouterr().out)
    (block,) = entry["_aws"]["CloudWatchMetrics"]

    assert sorted(metric["Name"] for metric in block["Metrics"]) == ["EventsRejected", "PushesIgnored"]
    assert block["Dimensions"] == [["service"]]
