"""start_build's handler against moto (DynamoDB, ECR, CodeBuild, EventBridge) with the events/ files.

moto has no CodeCommit GetCommit / GetDifferences, so those two calls go through botocore's Stubber.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from ecr_pipeline.core.naming import build_tag
from tests.events import load_event, oci_manifest
from tests.handlers import FakeLambdaContext, create_build_project, create_pipeline_tables, load_handler

COMMIT_A = "5f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
COMMIT_B = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"
DOCS_COMMIT = "d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5"


@dataclass
class Harness:
    app: ModuleType
    codecommit: Stubber
    published: list[dict[str, Any]] = field(default_factory=list)
    build_requests: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.app.handler(event, FakeLambdaContext(function_name="start-build"))
        return result

    def expect_commit(self, commit_id: str, message: str = "Add login page\n\nLonger body.") -> None:
        self.codecommit.add_response(
            "get_commit",
            {
                "commit": {
                    "commitId": commit_id,
                    "treeId": "f" * 40,
                    "parents": [],
                    "message": message,
                    "author": {"name": "Ada Lovelace", "email": "ada@example.com", "date": "1764324000 +0000"},
                    "committer": {"name": "Ada Lovelace", "email": "ada@example.com", "date": "1764324000 +0000"},
                }
            },
            {"repositoryName": "demo-app", "commitId": commit_id},
        )

    def expect_differences(self, pages: list[list[tuple[str | None, str | None]]]) -> None:
        for index, page in enumerate(pages):
            response: dict[str, Any] = {
                "differences": [
                    {
                        **({"beforeBlob": {"path": before, "blobId": "1" * 40, "mode": "100644"}} if before else {}),
                        **({"afterBlob": {"path": after, "blobId": "2" * 40, "mode": "100644"}} if after else {}),
                        "changeType": "M" if before and after else ("A" if after else "D"),
                    }
                    for before, after in page
                ]
            }
            if index < len(pages) - 1:
                response["NextToken"] = f"page-{index + 1}"
            expected = {"repositoryName": "demo-app", "beforeCommitSpecifier": ANY, "afterCommitSpecifier": ANY}
            if index:
                expected["NextToken"] = f"page-{index}"
            self.codecommit.add_response("get_differences", response, expected)

    def detail_types(self) -> list[str]:
        return [event["DetailType"] for event in self.published]

    def details(self, detail_type: str) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for e in self.published if e["DetailType"] == detail_type]


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with mock_aws():
        create_pipeline_tables()
        boto3.client("ecr").create_repository(repositoryName="demo-app")
        create_build_project()
        monkeypatch.setenv("LEDGER_TABLE", "ledger")
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
        monkeypatch.setenv("CODEBUILD_PROJECT", "image-build")
        app = load_handler("start_build")
        stubber = Stubber(app.services.codecommit._client)
        harness = Harness(app=app, codecommit=stubber)

        def record_event(params: dict[str, Any], **_: Any) -> None:
            harness.published.extend(params["Entries"])

        def record_build(params: dict[str, Any], **_: Any) -> None:
            harness.build_requests.append(params)

        def record_stop(params: dict[str, Any], **_: Any) -> None:
            harness.stopped.append(params["id"])

        app.services.publisher._client.meta.events.register("provide-client-params.events.PutEvents", record_event)
        codebuild_events = app.services.codebuild._client.meta.events
        codebuild_events.register("provide-client-params.codebuild.StartBuild", record_build)
        codebuild_events.register("provide-client-params.codebuild.StopBuild", record_stop)
        with stubber:
            yield harness


def put_build_image(commit: str) -> str:
    manifest = oci_manifest()
    response = boto3.client("ecr").put_image(
        repositoryName="demo-app", imageManifest=manifest, imageTag=build_tag(commit)
    )
    return str(response["image"]["imageId"]["imageDigest"])


def test_branch_push_starts_one_build_with_the_commit_and_overrides(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("src/app.py", "src/app.py")]])

    result = harness.invoke(load_event("codecommit_branch_updated"))

    assert result["pushes"][0]["images"][0]["action"] == "started"
    (request,) = harness.build_requests
    assert request["sourceVersion"] == COMMIT_B
    assert request["sourceLocationOverride"] == "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/demo-app"
    overrides = {item["name"]: item["value"] for item in request["environmentVariablesOverride"]}
    assert overrides["ECR_REPOSITORY_URI"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-app"
    assert overrides["IMAGE_TAG"] == f"sha-{COMMIT_B}" and overrides["SOURCE_BRANCH"] == "main"
    assert request["idempotencyToken"]
    (started,) = harness.details("Build Started")
    assert started["author"] == "Ada Lovelace" and started["message"] == "Add login page"
    assert started["build_id"].startswith("image-build:")


def test_branch_push_is_recorded_in_the_ledger(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("src/app.py", "src/app.py")]])

    harness.invoke(load_event("codecommit_branch_updated"))

    (push,) = harness.app.services.ledger.pushes_of_commit("demo-app", COMMIT_B)
    assert (push.ref_type, push.ref_name, push.push_time) == ("branch", "main", "2026-11-28T10:05:00.000000Z")
    assert push.author == "Ada Lovelace" and push.message == "Add login page"


def test_redelivered_push_event_starts_no_second_build(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("src/app.py", "src/app.py")]])
    event = load_event("codecommit_branch_updated")

    first = harness.invoke(event)
    second = harness.invoke(event)

    assert len(harness.build_requests) == 1
    assert second == first
    assert harness.detail_types() == ["Build Started"]


def test_new_branch_builds_without_reading_differences(harness: Harness) -> None:
    harness.expect_commit(COMMIT_A)

    harness.invoke(load_event("codecommit_branch_created"))

    assert len(harness.build_requests) == 1
    harness.codecommit.assert_no_pending_responses()


def test_docs_only_push_starts_no_build_and_says_why(harness: Harness) -> None:
    harness.expect_commit(DOCS_COMMIT)
    harness.expect_differences([[("docs/guide.md", "docs/guide.md")], [("README.md", None)]])

    harness.invoke(load_event("codecommit_docs_only_push"))

    assert harness.build_requests == []
    (skipped,) = harness.details("Build Skipped")
    assert skipped["reason"] == "no changed file matches the image's paths"
    assert skipped["changed_files"] == 2


def test_change_on_a_later_differences_page_still_builds(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("docs/a.md", "docs/a.md")], [("docs/b.md", None)], [(None, "src/new.py")]])

    harness.invoke(load_event("codecommit_branch_updated"))

    assert len(harness.build_requests) == 1
    harness.codecommit.assert_no_pending_responses()


def test_renamed_file_counts_by_its_old_path(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)
    # src/app.py moved into docs/: the source tree changed, so the image is rebuilt.
    harness.expect_differences([[("src/app.py", "docs/app.py")]])

    harness.invoke(load_event("codecommit_branch_updated"))

    assert len(harness.build_requests) == 1


def test_tag_push_of_an_already_built_commit_promotes_without_a_build(harness: Harness) -> None:
    digest = put_build_image(COMMIT_B)
    harness.expect_commit(COMMIT_B)

    harness.invoke(load_event("codecommit_tag_created"))

    assert harness.build_requests == []
    (requested,) = harness.details("Promotion Requested")
    assert requested["image_digest"] == digest and requested["ref_type"] == "tag" and requested["ref"] == "v1.2.3"


def test_tag_push_of_an_unbuilt_commit_builds_it(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)

    harness.invoke(load_event("codecommit_tag_created"))

    (request,) = harness.build_requests
    assert request["sourceVersion"] == COMMIT_B


def push_newer_while_older_build_is(harness: Harness, status: str) -> str:
    """Push COMMIT_A, then COMMIT_B to main while CodeBuild reports A's build as `status`.

    The build state comes from a Stubber: moto reports every build SUCCEEDED at once."""
    harness.expect_commit(COMMIT_A)
    harness.expect_differences([[("src/a.py", "src/a.py")]])
    harness.invoke(load_event("codecommit_branch_updated", commitId=COMMIT_A, oldCommitId="1" * 40))
    older_build = str(harness.details("Build Started")[0]["build_id"])
    newer = load_event("codecommit_branch_updated")
    newer["id"], newer["time"] = "newer-push", "2026-11-28T10:06:00Z"
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("src/b.py", "src/b.py")]])
    codebuild = Stubber(harness.app.services.codebuild._client)
    codebuild.add_response("start_build", {"build": {"id": "image-build:newer"}})
    codebuild.add_response(
        "batch_get_builds",
        {"builds": [{"id": older_build, "buildStatus": status, "buildComplete": status != "IN_PROGRESS"}]},
        {"ids": [older_build]},
    )
    if status == "IN_PROGRESS":
        codebuild.add_response("stop_build", {"build": {"id": older_build, "buildStatus": "IN_PROGRESS"}})
    with codebuild:
        harness.invoke(newer)
    codebuild.assert_no_pending_responses()
    return older_build


def test_newer_push_stops_the_running_build_of_the_older_push(harness: Harness) -> None:
    older_build = push_newer_while_older_build_is(harness, "IN_PROGRESS")

    assert harness.stopped == [older_build]
    assert harness.details("Build Started")[1]["superseded_build_id"] == older_build
    assert harness.app.services.ledger.get_build(older_build).superseded_by == "image-build:newer"


def test_finished_build_of_the_older_push_is_neither_stopped_nor_marked_superseded(harness: Harness) -> None:
    older_build = push_newer_while_older_build_is(harness, "SUCCEEDED")

    assert harness.stopped == []
    assert harness.details("Build Started")[1]["superseded_build_id"] is None
    build = harness.app.services.ledger.get_build(older_build)
    assert build is not None and build.superseded_by is None


def test_supersede_turned_off_lets_both_builds_run(harness: Harness) -> None:
    repository = harness.app.config.repositories["demo-app"]._replace(supersede=False)
    harness.app.config = harness.app.config._replace(repositories={"demo-app": repository})
    harness.expect_commit(COMMIT_A)
    harness.expect_differences([[("src/a.py", "src/a.py")]])
    harness.invoke(load_event("codecommit_branch_updated", commitId=COMMIT_A, oldCommitId="1" * 40))
    newer = load_event("codecommit_branch_updated")
    newer["id"], newer["time"] = "newer-push", "2026-11-28T10:06:00Z"
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("src/b.py", "src/b.py")]])
    # Only StartBuild is expected: asking CodeBuild about the older build would fail the Stubber.
    codebuild = Stubber(harness.app.services.codebuild._client)
    codebuild.add_response("start_build", {"build": {"id": "image-build:newer"}})

    with codebuild:
        harness.invoke(newer)

    codebuild.assert_no_pending_responses()
    assert [request["sourceVersion"] for request in harness.build_requests] == [COMMIT_A, COMMIT_B]
    assert harness.stopped == []


def test_late_older_push_is_skipped_as_superseded(harness: Harness) -> None:
    newer = load_event("codecommit_branch_updated")
    newer["id"], newer["time"] = "newer-push", "2026-11-28T10:06:00Z"
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("src/b.py", "src/b.py")]])
    harness.invoke(newer)
    harness.expect_commit(COMMIT_A)
    harness.expect_differences([[("src/a.py", "src/a.py")]])

    harness.invoke(load_event("codecommit_branch_updated", commitId=COMMIT_A, oldCommitId="1" * 40))

    assert len(harness.build_requests) == 1
    assert harness.details("Build Skipped")[0]["reason"] == "superseded by a newer push of the branch"


@pytest.mark.parametrize(
    "event",
    [
        "codecommit_branch_deleted",
        "codecommit_merge_commit",
        "codecommit_unknown_repository",
        "codecommit_branch_outside_filters",
    ],
)
def test_ignored_events_have_no_side_effect(harness: Harness, event: str) -> None:
    result = harness.invoke(load_event(event))

    (push,) = result["pushes"]
    assert push["status"] == "ignored" and push["effect"] == "ignored" and push["reason"]
    assert harness.build_requests == [] and harness.published == []
    harness.codecommit.assert_no_pending_responses()


def test_repository_trigger_shape_starts_a_build(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)

    harness.invoke(load_event("codecommit_repository_trigger"))

    (request,) = harness.build_requests
    assert request["sourceVersion"] == COMMIT_B


def test_malformed_event_is_rejected_naming_the_field_and_not_retried(harness: Harness) -> None:
    event = load_event("codecommit_branch_updated")
    del event["detail"]["referenceName"]

    result = harness.invoke(event)

    assert result["status"] == "rejected"
    assert "detail.referenceName is missing" in result["reason"]
    assert harness.build_requests == []


def test_an_event_without_an_id_is_rejected_before_idempotency(harness: Harness) -> None:
    # Parsed before idempotency, as every handler does: no IdempotencyKeyError escapes for Lambda to retry.
    event = load_event("codecommit_branch_updated")
    del event["id"]

    result = harness.invoke(event)

    assert result["status"] == "rejected" and "id" in result["reason"]
    assert harness.build_requests == []


def test_throttled_start_build_is_raised_for_lambda_to_retry(harness: Harness) -> None:
    harness.expect_commit(COMMIT_B)
    harness.expect_differences([[("src/app.py", "src/app.py")]])
    codebuild = Stubber(harness.app.services.codebuild._client)
    for _ in range(5):  # botocore's standard retry mode tries five times in all
        codebuild.add_client_error("start_build", "ThrottlingException", http_status_code=400)

    with codebuild, pytest.raises(Exception, match="ThrottlingException"):
        harness.invoke(load_event("codecommit_branch_updated"))
