"""The pipeline's own events name the stack that published them (botocore Stubber, no network)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from ecr_pipeline.adapters.eventbridge import EventNotPublished, EventPublisher
from ecr_pipeline.events.pipeline import BuildStarted, Subject, to_detail

STARTED = BuildStarted(Subject("demo-app", "c" * 40, "ecr-pipeline/demo-app"), build_id="b:1", project="p")


def stubbed_client() -> tuple[object, Stubber]:
    client = boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


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
