"""AWS calls per event for tag_image, scan_check and deploy, counted with botocore's
`before-call` hook on the clients each handler uses, against the budget in docs/image-flow.md.
Each test also asserts the outcome it measured, so a handler that does nothing cannot pass.

Each figure includes Powertools idempotency (2 DynamoDB calls: the in-progress record and the
result), which every acted-on event pays.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.naming import build_tag
from ecr_pipeline.events.pipeline import push_from_detail
from tests.events import load_event
from tests.handlers import create_pipeline_tables
from tests.integration.image_flow_world import (
    COMMIT,
    REPO_ROOT,
    Function,
    load_function,
    make_ecs_service,
    make_repository,
    put_build_image,
    record_push,
    register_image,
    write_config,
)

# The push of the git tag v1.2.3 that events/promotion_requested.json is about.
TAG_PUSH_ID = "e3f4a5b6-c7d8-4e9f-0a1b-2c3d4e5f6a7b#tag#v1.2.3"
OTHER_COMMIT = "b" * 40

# The documented budget: (handler, event) -> most AWS calls one event may cost.
BUDGET = {
    "tag_image: build push, repository scans on push": 6,
    "tag_image: second build push of the process, repository scans on push": 5,
    "tag_image: build push, scan started": 7,
    "tag_image: build push after its scan (2 events)": 6,
    "tag_image: build push, scan gate off (2 events)": 6,
    "tag_image: retag push (ignored)": 0,
    "tag_image: verdict PASSED, default branch (3 tags)": 12,
    "tag_image: verdict BLOCKED": 3,
    "tag_image: promotion requested, git tag v1.2.3 (3 tags)": 12,
    # scan_check: + the verdict history (adapters/economy_ledger.py), one UpdateItem.
    "scan_check: basic scan COMPLETE, one findings page": 8,
    "scan_check: basic scan FAILED": 7,
    "deploy: image promoted, deployment started": 12,
    "deploy: image promoted, two environments started": 19,
    "deploy: image promoted, superseded": 6,
    "deploy: image promoted, group busy, queued": 12,
    "deploy: retry of a pending candidate, group still busy": 8,
    "deploy: retry of a superseded candidate": 3,
}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_pipeline_tables()
        yield


def within_budget(function: Function, name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke once: the calls it cost must be within the budget; the result is returned for its outcome."""
    function.calls.clear()
    result: dict[str, Any] = function.invoke(event)
    total = sum(function.calls.values())
    print(f"{name}: {total} {dict(function.calls)}")
    assert total <= BUDGET[name], f"{name}: {total} AWS calls, budget {BUDGET[name]}"
    return result


def environment_statuses(result: dict[str, Any]) -> list[str]:
    return [environment["status"] for environment in result["environments"]]


def verdict(digest: str, passed: bool) -> dict[str, Any]:
    """A "Scan Verdict" as scan_check tells it: after recording it in the ledger."""
    event = load_event("scan_verdict_passed" if passed else "scan_verdict_blocked", image_digest=digest)
    register_image(digest, verdict=event["detail"]["verdict"], reasons=tuple(event["detail"]["reasons"]))
    return event


def test_tag_image_build_push_on_a_scan_on_push_repository(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(scan_on_push=True)
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch)
    name = "tag_image: build push, repository scans on push"

    result = within_budget(tag_image, name, load_event("ecr_push_build_tag", **{"image-digest": digest}))

    assert (result["status"], result["scan"]) == ("registered", "scan on push")


def test_tag_image_build_push_that_starts_a_scan(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(scan_on_push=False)
    digest = put_build_image()
    tag_image = load_function("tag_image", monkeypatch)
    name = "tag_image: build push, scan started"

    result = within_budget(tag_image, name, load_event("ecr_push_build_tag", **{"image-digest": digest}))

    assert (result["status"], result["scan"]) == ("registered", "scan started")
    assert tag_image.calls["ecr:StartImageScan"] == 1


def test_tag_image_second_build_push_of_a_process_reuses_the_repository_setting(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository(scan_on_push=True)
    first, second = put_build_image(), put_build_image(OTHER_COMMIT)
    record_push()
    record_push(ref="develop", commit=OTHER_COMMIT, time="2026-11-28T10:06:00.000000Z")
    tag_image = load_function("tag_image", monkeypatch)
    tag_image.invoke(load_event("ecr_push_build_tag", **{"image-digest": first}))
    name = "tag_image: second build push of the process, repository scans on push"

    push = load_event("ecr_push_build_tag", **{"image-digest": second, "image-tag": build_tag(OTHER_COMMIT)})
    result = within_budget(tag_image, name, push)

    assert (result["status"], result["scan"], result["commit"]) == ("registered", "scan on push", OTHER_COMMIT)
    assert "ecr:DescribeRepositories" not in tag_image.calls


def test_tag_image_build_push_after_its_scan(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(scan_on_push=True)
    digest = put_build_image()
    record_push()
    # scan_check came first: the verdict is on the image item, told at the registration.
    Ledger("ledger").record_verdict("demo-app", digest, "PASSED", ["within the policy"], "basic")
    tag_image = load_function("tag_image", monkeypatch)
    name = "tag_image: build push after its scan (2 events)"

    result = within_budget(tag_image, name, load_event("ecr_push_build_tag", **{"image-digest": digest}))

    assert result["status"] == "registered"
    assert tag_image.detail_types() == ["Image Registered", "Scan Verdict"]
    assert tag_image.calls["events:PutEvents"] == 1


def test_tag_image_build_push_with_the_scan_gate_off(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_repository(scan_on_push=False)
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch, write_config(tmp_path, {"scan": {"gate": False}}))
    name = "tag_image: build push, scan gate off (2 events)"

    result = within_budget(tag_image, name, load_event("ecr_push_build_tag", **{"image-digest": digest}))

    assert result["status"] == "registered"
    assert tag_image.detail_types() == ["Image Registered", "Scan Verdict"]
    assert tag_image.calls["events:PutEvents"] == 1


def test_tag_image_retag_push_costs_nothing(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    tag_image = load_function("tag_image", monkeypatch)
    name = "tag_image: retag push (ignored)"

    result = within_budget(tag_image, name, load_event("ecr_push_retag"))

    assert result["status"] == "ignored" and "not a build tag" in result["reason"]


def test_tag_image_passed_verdict_for_the_default_branch(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch)
    name = "tag_image: verdict PASSED, default branch (3 tags)"

    result = within_budget(tag_image, name, verdict(digest, True))

    assert result["status"] == "promoted" and sorted(result["added"]) == ["latest", "main", "main-a3b2c1d"]


def test_tag_image_blocked_verdict(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch)
    name = "tag_image: verdict BLOCKED"

    result = within_budget(tag_image, name, verdict(digest, False))

    assert result["status"] == "blocked" and result["reasons"]


def test_tag_image_promotion_request_for_a_git_tag(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    register_image(digest, verdict="PASSED", reasons=("within the policy",))
    record_push("tag", "v1.2.3", time="2026-11-28T12:00:00.000000Z", push_id=TAG_PUSH_ID)
    tag_image = load_function("tag_image", monkeypatch)
    name = "tag_image: promotion requested, git tag v1.2.3 (3 tags)"

    result = within_budget(tag_image, name, load_event("promotion_requested", image_digest=digest))

    assert result["status"] == "promoted" and result["added"] == ["1.2.3", "1.2", "1"]


def test_scan_check_complete_basic_scan(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(scan_on_push=False)
    digest = put_build_image()
    boto3.client("ecr").start_image_scan(repositoryName="demo-app", imageId={"imageDigest": digest})
    record_push()
    register_image(digest, verdict=None)
    scan_check = load_function("scan_check", monkeypatch)
    name = "scan_check: basic scan COMPLETE, one findings page"

    result = within_budget(scan_check, name, load_event("ecr_scan_complete_findings", **{"image-digest": digest}))

    assert (result["status"], result["verdict"]) == ("decided", "BLOCKED")
    assert any("CRITICAL" in reason for reason in result["reasons"])


def test_scan_check_failed_scan(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    register_image(digest, verdict=None)
    scan_check = load_function("scan_check", monkeypatch)
    name = "scan_check: basic scan FAILED"

    result = within_budget(scan_check, name, load_event("ecr_scan_failed", **{"image-digest": digest}))

    assert (result["status"], result["verdict"]) == ("decided", "BLOCKED")


def promoted(time: str, digest: str = "sha256:" + "ab" * 32, commit: str = COMMIT) -> dict[str, Any]:
    event = load_event("image_promoted", image_digest=digest, commit=commit, image_tag=f"sha-{commit}")
    push = {**event["detail"]["pushes"][0], "push_time": time, "push_id": f"{time}#branch#main", "commit": commit}
    event["detail"]["pushes"] = [push]
    event["id"] = f"promoted-{time}"
    # What tag_image promoted from: the push and the image with its PASSED verdict, in the ledger.
    Ledger("ledger").record_push(push_from_detail(push, "push"))
    register_image(digest, commit)
    return event


def test_deploy_started(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    make_ecs_service()
    deploy = load_function("deploy", monkeypatch)
    name = "deploy: image promoted, deployment started"

    result = within_budget(deploy, name, promoted("2026-11-28T10:05:00.000000Z"))

    assert environment_statuses(result) == ["started"]


def test_deploy_to_two_environments(aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_repository()
    make_ecs_service()
    target = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8"))["repositories"]["demo-app"][
        "images"
    ]["demo-app"]["deploy"][0]
    staging = {**target, "environment": "staging"}  # the same moto service and group
    deploy = load_function("deploy", monkeypatch, write_config(tmp_path, {"deploy": [target, staging]}))
    name = "deploy: image promoted, two environments started"

    result = within_budget(deploy, name, promoted("2026-11-28T10:05:00.000000Z"))

    assert environment_statuses(result) == ["started", "started"]
    assert deploy.detail_types() == ["Deployment Started", "Deployment Started"]
    assert deploy.calls["events:PutEvents"] == 1


def test_deploy_superseded(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    make_ecs_service()
    deploy = load_function("deploy", monkeypatch)
    deploy.invoke(promoted("2026-11-28T10:05:00.000000Z"))
    name = "deploy: image promoted, superseded"

    result = within_budget(deploy, name, promoted("2026-11-28T10:04:00.000000Z", "sha256:" + "cd" * 32, "1" * 40))

    assert result["environments"] == [
        {"environment": "dev", "status": "skipped", "effect": "acted", "reason": "superseded"}
    ]


def test_deploy_busy_group_queued(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    make_ecs_service()
    url = boto3.client("sqs").create_queue(QueueName="deploy-retry")["QueueUrl"]
    monkeypatch.setenv("DEPLOY_RETRY_QUEUE_URL", url)
    deploy = load_function("deploy", monkeypatch)
    stubber = Stubber(deploy.app.services.codedeploy._client)
    stubber.add_client_error("create_deployment", service_error_code="DeploymentLimitExceededException")
    name = "deploy: image promoted, group busy, queued"

    with stubber:
        result = within_budget(deploy, name, promoted("2026-11-28T10:05:00.000000Z"))

    assert environment_statuses(result) == ["queued"]
    # A first try: the claim replaced no earlier try of this candidate, so no deployment of its own can exist.
    assert "codedeploy:ListDeployments" not in deploy.calls
    assert "codedeploy:BatchGetDeployments" not in deploy.calls


def test_deploy_retry_of_a_pending_candidate_on_a_still_busy_group(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    make_ecs_service()
    url = boto3.client("sqs").create_queue(QueueName="deploy-retry")["QueueUrl"]
    monkeypatch.setenv("DEPLOY_RETRY_QUEUE_URL", url)
    deploy = load_function("deploy", monkeypatch)
    sent: list[dict[str, Any]] = []
    deploy.app.services.retry_queue._client.meta.events.register(
        "provide-client-params.sqs.SendMessage",
        lambda params, **_: sent.append({"eventSource": "aws:sqs", "messageId": "1", "body": params["MessageBody"]}),
    )
    stubber = Stubber(deploy.app.services.codedeploy._client)
    for _ in range(2):
        stubber.add_client_error("create_deployment", service_error_code="DeploymentLimitExceededException")
    # The retry looks for a deployment an earlier try of this candidate may have created: another push's.
    stubber.add_response("list_deployments", {"deployments": ["d-OTHER"]})
    stubber.add_response("batch_get_deployments", {"deploymentsInfo": [{"deploymentId": "d-OTHER"}]})
    name = "deploy: retry of a pending candidate, group still busy"

    with stubber:
        deploy.invoke(promoted("2026-11-28T10:05:00.000000Z"))
        (retry,) = sent
        result = within_budget(deploy, name, {"Records": [retry]})

    assert (result["status"], environment_statuses(result)) == ("retried", ["queued"])
    assert deploy.calls["codedeploy:ListDeployments"] == deploy.calls["codedeploy:BatchGetDeployments"] == 1
    assert len(sent) == 2 and json.loads(sent[1]["body"])["attempt"] == 2
    stubber.assert_no_pending_responses()


def test_deploy_retry_of_a_superseded_candidate(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    make_ecs_service()
    deploy = load_function("deploy", monkeypatch)
    deploy.invoke(promoted("2026-11-28T10:05:00.000000Z"))
    body = (
        '{"attempt": 1, "ecr_repository": "demo-app", "environment": "dev", "kind": "deploy-retry",'
        ' "push_id": "old", "push_time": "2026-11-28T10:04:00.000000Z", "repository_uri": "uri"}'
    )
    name = "deploy: retry of a superseded candidate"

    result = within_budget(deploy, name, {"Records": [{"eventSource": "aws:sqs", "messageId": "1", "body": body}]})

    assert (result["status"], environment_statuses(result)) == ("retried", ["superseded"])
