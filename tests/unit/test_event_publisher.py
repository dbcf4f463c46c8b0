"""The pipeline's own events: they name the stack that published them, and a batch sends them in
the fewest PutEvents calls EventBridge allows (botocore Stubber or a recording client, no network)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecr_pipeline.adapters.eventbridge import EventNotPublished, EventPublisher, calls_of, entry_size
from ecr_pipeline.events.pipeline import BuildSkipped, BuildStarted, Subject, to_detail

STARTED = BuildStarted(Subject("demo-app", "c" * 40, "ecr-pipeline/demo-app"), build_id="b:1", project="p")


def stubbed_client() -> tuple[object, Stubber]:
    client = boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def in_one_batch(publisher: EventPublisher, records: list[Any]) -> None:
    with publisher.batch():
        for record in records:
            publisher.publish(record)


def test_every_event_carries_the_stack_name() -> None:
    client, stub = stubbed_client()
    detail = to_detail(STARTED)
    entry = {
        "Source": "ecr-pipeline",
        "DetailType": "Build Started",
        "Detail": json.dumps({**detail, "stack": "ecr-pipeline-prod"}, sort_keys=True),
        "EventBusName": "default",
    }
    stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}, {"Entries": [entry]})

    with stub:
        EventPublisher("ecr-pipeline", events_client=client, stack="ecr-pipeline-prod").publish(STARTED)

    stub.assert_no_pending_responses()


def test_a_refused_entry_is_an_error_naming_the_event() -> None:
    client, stub = stubbed_client()
    failed = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
    stub.add_response("put_events", failed)

    with stub, pytest.raises(EventNotPublished, match="'Build Started' was not published: InternalFailure"):
        EventPublisher("ecr-pipeline", events_client=client, stack="ecr-pipeline-dev").publish(STARTED)


# --- batches: the events of one handled event in the fewest PutEvents calls ----------------------

SUBJECT = STARTED.subject


def started(number: int) -> BuildStarted:
    return BuildStarted(SUBJECT, build_id=f"b:{number}", project="p")


class RecordingEvents:
    """A PutEvents client that records each call and refuses the entries `refuse` names."""

    def __init__(self, refuse: Callable[[dict[str, Any], int], str | None] = lambda entry, attempt: None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self._refuse = refuse
        self._sent: Counter[str] = Counter()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        results = []
        for entry in Entries:
            self._sent[entry["Detail"]] += 1
            code = self._refuse(entry, self._sent[entry["Detail"]])
            results.append({"ErrorCode": code, "ErrorMessage": "refused"} if code else {"EventId": "id"})
        return {"FailedEntryCount": sum("ErrorCode" in result for result in results), "Entries": results}

    def sent(self) -> list[str]:
        return [json.loads(entry["Detail"])["build_id"] for call in self.calls for entry in call]


def entry(detail: str, **more: Any) -> dict[str, Any]:
    return {"Source": "ecr-pipeline", "DetailType": "Build Started", "Detail": detail, "EventBusName": "bus", **more}


@pytest.mark.parametrize(("entries", "calls"), [(1, 1), (10, 1), (11, 2), (25, 3)])
def test_a_batch_sends_at_most_ten_entries_per_call(entries: int, calls: int) -> None:
    events = RecordingEvents()
    publisher = EventPublisher("ecr-pipeline", events_client=events)

    with publisher.batch():
        for number in range(entries):
            publisher.publish(started(number))
        assert events.calls == []  # collected, not sent, inside the block

    assert len(events.calls) == calls
    assert all(len(call) <= 10 for call in events.calls)
    assert events.sent() == [f"b:{number}" for number in range(entries)]  # each once, in order


def test_three_events_of_one_batch_are_one_call() -> None:
    events = RecordingEvents()

    in_one_batch(EventPublisher("ecr-pipeline", events_client=events), [started(1), started(2), started(3)])

    assert len(events.calls) == 1 and events.sent() == ["b:1", "b:2", "b:3"]


def test_outside_a_batch_each_publish_is_its_own_call() -> None:
    events = RecordingEvents()
    publisher = EventPublisher("ecr-pipeline", events_client=events)

    publisher.publish(started(1))
    publisher.publish(started(2))

    assert [len(call) for call in events.calls] == [1, 1]


def test_a_nested_batch_joins_the_outer_one() -> None:
    events = RecordingEvents()
    publisher = EventPublisher("ecr-pipeline", events_client=events)

    with publisher.batch():
        publisher.publish(started(1))
        with publisher.batch():
            publisher.publish(started(2))
        assert events.calls == []  # the inner block's end sends nothing
        publisher.publish(started(3))

    assert len(events.calls) == 1 and events.sent() == ["b:1", "b:2", "b:3"]


def test_a_batch_left_with_an_exception_sends_nothing() -> None:
    events = RecordingEvents()
    publisher = EventPublisher("ecr-pipeline", events_client=events)

    with pytest.raises(RuntimeError, match="throttled"), publisher.batch():
        publisher.publish(started(1))
        raise RuntimeError("throttled")

    assert events.calls == []
    publisher.publish(started(2))  # and the publisher is out of the batch again
    assert events.sent() == ["b:2"]


def test_the_entry_size_is_measured_as_eventbridge_documents_it() -> None:
    # Source, DetailType, Detail and each resource in UTF-8 bytes; Time 14; EventBusName not at all.
    plain = entry("{}")
    assert entry_size(plain) == len("ecr-pipeline") + len("Build Started") + 2
    assert entry_size(entry("é")) == entry_size(entry("e")) + 1
    assert entry_size(entry("{}", Time="2026-11-28T10:05:00Z")) == entry_size(plain) + 14
    assert entry_size(entry("{}", Resources=["arn:a", "arn:bc"])) == entry_size(plain) + 11
    assert entry_size(entry("{}", EventBusName="x" * 1000)) == entry_size(plain)


def test_a_batch_over_256_kb_is_split_between_calls() -> None:
    overhead = entry_size(entry(""))
    # EventBridge wants a call's entries below 256 KB: one byte less shares a call, 256 KB does not.
    below = [entry("x" * (128 * 1024 - overhead)), entry("y" * (128 * 1024 - overhead - 1))]
    exact = [entry("x" * (128 * 1024 - overhead)), entry("y" * (128 * 1024 - overhead))]
    large = [entry("z" * 100_000) for _ in range(5)]

    assert [len(call) for call in calls_of(below)] == [2]
    assert [len(call) for call in calls_of(exact)] == [1, 1]
    assert [len(call) for call in calls_of(large)] == [2, 2, 1]
    assert [len(call) for call in calls_of([entry("big" * 100_000), entry("{}")])] == [1, 1]


def test_a_refused_entry_is_sent_again_alone_and_nothing_accepted_goes_twice() -> None:
    # EventBridge refuses b:2 once (a transient failure) among five entries
    events = RecordingEvents(
        refuse=lambda e, attempt: "ThrottlingException" if "b:2" in e["Detail"] and attempt == 1 else None
    )
    publisher = EventPublisher("ecr-pipeline", events_client=events)

    in_one_batch(publisher, [started(number) for number in range(5)])

    assert [len(call) for call in events.calls] == [5, 1]
    assert json.loads(events.calls[1][0]["Detail"])["build_id"] == "b:2"
    assert sorted(events.sent()) == ["b:0", "b:1", "b:2", "b:2", "b:3", "b:4"]


def test_an_entry_refused_twice_is_an_error_naming_each_refused_event() -> None:
    def refuse(e: dict[str, Any], attempt: int) -> str | None:
        build_id = json.loads(e["Detail"])["build_id"]
        return {"b:1": "InternalFailure", "b:3": "ThrottlingException"}.get(build_id)

    events = RecordingEvents(refuse=refuse)
    publisher = EventPublisher("ecr-pipeline", events_client=events)
    skipped = BuildSkipped(SUBJECT, reason="superseded", build_id="b:3")

    with pytest.raises(EventNotPublished) as raised:
        in_one_batch(publisher, [started(0), started(1), started(2), skipped])

    assert raised.value.refused == [
        ("Build Started", "InternalFailure", "refused"),
        ("Build Skipped", "ThrottlingException", "refused"),
    ]
    assert "'Build Started' was not published: InternalFailure" in str(raised.value)
    assert "'Build Skipped' was not published: ThrottlingException" in str(raised.value)
    # one call for all four, then each refused entry once more, alone
    assert [len(call) for call in events.calls] == [4, 1, 1]
