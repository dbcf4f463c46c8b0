"""story.py, pure: a small ledger fixture in, the story's document and its text out."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from botocore.stub import Stubber

from ecr_pipeline.adapters.story_reads import stack_outputs
from ecr_pipeline.cli import StoryError, check_arguments, commits_asked
from ecr_pipeline.config import PipelineConfig, RepositoryConfig
from ecr_pipeline.notify.model import Finding
from ecr_pipeline.records import DeploymentRecord, EnvironmentState, ImageRecord, NoticeRecord, PushRecord
from ecr_pipeline.story import (
    BuildFacts,
    CommitFacts,
    EnvironmentFacts,
    ImageFacts,
    commit_story,
    environment_story,
    render_story,
    skipped_builds,
    top_findings,
)

ECR = "ecr-pipeline/demo-app"
OLD, NEW = "a" * 40, "b" * 40
PUSH = PushRecord("demo-app", "branch", "main", OLD, "2026-01-05T10:00:00Z", "p1", "Dana", "Add the service\n\nbody")


def candidate(commit: str, push_time: str, **fields: Any) -> EnvironmentState:
    return EnvironmentState(
        ECR, "dev", f"sha256:{commit[0] * 64}", commit, "branch", "main", push_time, commit[:2], **fields
    )


def deployment(commit: str, deployment_id: str, outcome: str, started: str) -> DeploymentRecord:
    return DeploymentRecord(ECR, "dev", deployment_id, commit, "2026-01-05T10:00:00Z", started, started, outcome)


def notice(fact: str, status: str, headline: str, time: str = "2026-01-05T10:00:01Z") -> NoticeRecord:
    event = fact.split("#", 1)[0].split()[0].lower()
    return NoticeRecord("demo-app", OLD, "main", time, fact, event, status, headline, (("slack", "delivered"),))


REPLACED_DEV = EnvironmentFacts(
    "dev",
    "demo-cluster/demo-app-dev",
    candidate=candidate(NEW, "2026-01-06T09:00:00Z", deployment_id="d-2", outcome="SUCCEEDED"),
    serving=candidate(NEW, "2026-01-06T09:00:00Z", deployment_id="d-2"),
    history=(
        deployment(OLD, "d-1", "SUCCEEDED", "2026-01-05T10:05:00Z"),
        deployment(NEW, "d-2", "SUCCEEDED", "2026-01-06T09:05:00Z"),
    ),
)
FACTS = CommitFacts(
    "demo-app",
    OLD,
    (PUSH,),
    (
        ImageFacts(
            ECR,
            (
                BuildFacts(
                    "proj:1", "SUCCEEDED", "main", duration_seconds=42.0, log_url="https://console.aws.amazon.com/l"
                ),
            ),
            "sha256:" + "a" * 64,
            ("sha-" + OLD, "main"),
            record=ImageRecord(
                ECR, "sha256:" + "a" * 64, OLD, verdict="PASSED", verdict_reasons=("within the policy",)
            ),
            findings=(Finding("CVE-2", "LOW"), Finding("CVE-1", "HIGH", "openssl", "3.0.9"), Finding("CVE-2", "LOW")),
            environments=(REPLACED_DEV,),
        ),
    ),
    (
        notice("Scan Verdict#x#PASSED", "PASSED", "Image passed its scan", "2026-01-05T10:03:00Z"),
        notice("Build Started#proj:1", "STARTED", "Build started", "2026-01-05T10:00:02Z"),
    ),
)


def test_top_findings_are_the_most_severe_first_each_once() -> None:
    findings = (
        Finding("CVE-3", "MEDIUM"),
        Finding("CVE-9", "CRITICAL"),
        Finding("CVE-3", "MEDIUM"),
        Finding("CVE-1", "CRITICAL"),
    )

    assert [finding.id for finding in top_findings(findings, limit=3)] == ["CVE-1", "CVE-9", "CVE-3"]


def test_a_deployed_commit_is_replaced_by_the_later_push_the_environment_serves() -> None:
    place = environment_story(REPLACED_DEV, OLD)

    assert place["serving_now"] is False
    assert [(item["deployment_id"], item["status"]) for item in place["deployments"]] == [("d-1", "SUCCEEDED")]
    assert (place["replaced_by"]["commit"], place["replaced_by"]["status"]) == (NEW, "SERVING")


def test_the_commit_the_environment_serves_has_no_replacement() -> None:
    place = environment_story(REPLACED_DEV, NEW)

    assert place["serving_now"] is True and place["replaced_by"] is None
    assert [item["deployment_id"] for item in place["deployments"]] == ["d-2"]


def test_a_deployment_still_running_is_in_progress_and_a_gate_refusal_says_why() -> None:
    running = EnvironmentFacts("dev", "t", candidate=candidate(OLD, "2026-01-05T10:00:00Z", deployment_id="d-9"))
    refused = EnvironmentFacts("dev", "t", candidate=candidate(OLD, "2026-01-05T10:00:00Z", gate_reason="new CRITICAL"))

    assert environment_story(running, OLD)["deployments"][0]["status"] == "IN_PROGRESS"
    assert environment_story(refused, OLD)["deployments"][0] | {"started_at": None} == {
        "deployment_id": None,
        "status": "REFUSED",
        "started_at": None,
        "ended_at": None,
        "reason": "new CRITICAL",
    }


def test_a_commit_that_never_reached_an_environment_has_no_deployment_there() -> None:
    place = environment_story(REPLACED_DEV, "c" * 40)

    assert place["deployments"] == [] and place["replaced_by"] is None and place["serving_now"] is False


def test_a_skipped_build_reason_is_read_from_its_fact_though_the_push_id_holds_hashes() -> None:
    told = notice(
        f"Build Skipped#uuid#branch#main#{ECR}#no changed file matches the image's paths", "SKIPPED", "Build skipped"
    )
    other = notice("Build Skipped#uuid#branch#main#ecr-pipeline/other#newer push", "SKIPPED", "Build skipped")

    assert skipped_builds((told, other), ECR) == [
        {"reason": "no changed file matches the image's paths", "time": told.time, "ref": "main"}
    ]


def test_a_superseded_build_is_said_superseded_with_the_newer_build_and_commit() -> None:
    stopped = BuildFacts("proj:1", "STOPPED", "main", superseded_by="proj:2", superseded_by_commit=NEW)
    story = commit_story(FACTS._replace(images=(ImageFacts(ECR, (stopped,)),)))

    (build,) = story["images"][0]["builds"]
    assert build["status"] == "SUPERSEDED"
    assert build["superseded_by"] == {"build_id": "proj:2", "commit": NEW}


def test_the_document_has_the_push_the_image_its_verdict_and_the_notifications_in_time_order() -> None:
    story = commit_story(FACTS)
    (image,) = story["images"]

    assert story["pushes"] == [
        {
            "ref_type": "branch",
            "ref": "main",
            "author": "Dana",
            "message": PUSH.message,
            "push_time": PUSH.push_time,
            "push_id": "p1",
        }
    ]
    assert image["tags"] == ["main", "sha-" + OLD]
    assert image["verdict"]["verdict"] == "PASSED"
    assert [finding["id"] for finding in image["verdict"]["top_findings"]] == ["CVE-1", "CVE-2"]
    assert [item["status"] for item in story["notifications"]] == ["STARTED", "PASSED"]
    assert story["notifications"][0]["channels"] == {"slack": "delivered"}


def test_an_image_never_built_has_no_verdict() -> None:
    story = commit_story(FACTS._replace(images=(ImageFacts(ECR),), notices=()))

    assert story["images"][0]["verdict"] is None and story["images"][0]["builds"] == []


def test_the_text_tells_push_build_verdict_environment_and_notifications() -> None:
    text = render_story(commit_story(FACTS))

    assert text.splitlines()[0] == f"Commit {OLD} of demo-app"
    assert f"pushed to branch main by Dana at {PUSH.push_time}: Add the service" in text
    assert "build proj:1: SUCCEEDED in 42s (main)" in text
    assert "verdict: PASSED" in text and "HIGH CVE-1 in openssl, fixed in 3.0.9" in text
    assert "deployment d-1 SUCCEEDED" in text
    assert f"replaced by {NEW[:12]} (main, pushed 2026-01-06T09:00:00Z): deployment d-2 SERVING" in text
    assert "Build started [STARTED]: slack delivered" in text


def test_the_text_of_a_docs_only_push_says_why_nothing_was_built() -> None:
    skipped = notice(f"Build Skipped#p1#{ECR}#no changed file matches the image's paths", "SKIPPED", "Build skipped")
    text = render_story(commit_story(FACTS._replace(images=(ImageFacts(ECR),), notices=(skipped,))))

    assert "no build (main): no changed file matches the image's paths" in text


def test_the_stack_outputs_are_read_by_name() -> None:
    import boto3

    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    outputs = [
        {"OutputKey": "LedgerTableName", "OutputValue": "ledger"},
        {"OutputKey": "ImageBuildProjectName", "OutputValue": "p"},
    ]
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "dev",
                        "CreationTime": "2026-01-01T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": outputs,
                    }
                ]
            },
            {"StackName": "dev"},
        )
        assert stack_outputs(cloudformation, "dev") == {"LedgerTableName": "ledger", "ImageBuildProjectName": "p"}


class TwoRepositories:
    """A reader whose ledger has the commit in two repositories."""

    config = PipelineConfig({"app": RepositoryConfig("app"), "web": RepositoryConfig("web")})

    def repositories_with_commit(self, commit: str, repository: str | None = None) -> list[str]:
        return [name for name in ("app", "web") if repository in (None, name)]


def test_a_commit_pushed_to_two_repositories_is_ambiguous_and_names_them() -> None:
    arguments = argparse.Namespace(commit=OLD, digest=None, branch=None, tag=None, repository=None)

    with pytest.raises(StoryError, match=r"several repositories \(app, web\): give --repository"):
        commits_asked(TwoRepositories(), arguments)  # type: ignore[arg-type]
    assert commits_asked(TwoRepositories(), argparse.Namespace(**{**vars(arguments), "repository": "web"})) == [  # type: ignore[arg-type]
        ("web", OLD)
    ]


def test_a_short_commit_id_is_refused_before_anything_is_read() -> None:
    arguments = argparse.Namespace(commit="abc123", digest=None, stack=None, ledger_table="t")

    with pytest.raises(StoryError, match="full 40-character commit id"):
        check_arguments(arguments)
