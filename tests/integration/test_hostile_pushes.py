"""start_build against moto with hostile pushes: a huge commit message is still built and told,
with the message cut; a malformed commit id is rejected before any write."""

from __future__ import annotations

import json

import boto3

from ecr_pipeline.text import MESSAGE_LIMIT
from tests.events import load_event
from tests.integration import test_start_build
from tests.integration.test_start_build import COMMIT_B, Harness

harness = test_start_build.harness  # start_build's moto world and CodeCommit stub, as its tests use it

PUT_EVENTS_ENTRY_LIMIT = 256 * 1024


def test_a_megabyte_commit_message_is_built_and_told_with_the_message_cut(harness: Harness) -> None:
    # Given a push whose commit message is 1 MB on its first line
    harness.expect_commit(COMMIT_B, message="Fix " + "x" * 1_000_000 + "\n\nbody")
    harness.expect_differences([[("src/app.py", "src/app.py")]])
    # When it is delivered
    result = harness.invoke(load_event("codecommit_branch_updated"))
    # Then the build starts, and "Build Started" carries the message cut, within PutEvents' limit
    assert result["pushes"][0]["images"][0]["action"] == "started"
    assert len(harness.build_requests) == 1
    (started,) = harness.details("Build Started")
    assert len(started["message"]) == MESSAGE_LIMIT and started["message"].endswith("…")
    for entry in harness.published:
        assert len(json.dumps(entry).encode("utf-8")) < PUT_EVENTS_ENTRY_LIMIT
    items = boto3.client("dynamodb").scan(TableName="ledger")["Items"]
    assert any(item.get("message", {}).get("S", "").startswith("Fix x") for item in items)


def test_a_push_of_a_commit_id_that_is_not_40_hex_is_rejected_before_any_write(harness: Harness) -> None:
    result = harness.invoke(load_event("codecommit_branch_updated", commitId="HEAD"))
    assert result["status"] == "rejected" and result["field"] == "detail.commitId"
    assert harness.build_requests == [] and harness.published == []
    assert boto3.client("dynamodb").scan(TableName="ledger")["Items"] == []
