"""The emulated services answer the calls the functions make in the shapes botocore expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ecr_pipeline.core.naming import build_tag
from emulator.core import Emulator, Options
from emulator.output import Printer
from emulator.slack import block_kit_problems

# The emulated stack's ECR repository for the image demo-app.
ECR_REPOSITORY = "ecr-pipeline/demo-app"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(Options(printer=Printer(enabled=False))) as running:
        yield running


@pytest.fixture(scope="module")
def commits(emulator: Emulator) -> dict[str, str]:
    """Two commits on main: the second changes 5 files and deletes one."""
    repository = emulator.git_repositories["demo-app"]
    files = {"Dockerfile": "FROM scratch\n", "old.txt": "old\n", **{f"src/f{i}.py": "x = 0\n" for i in range(4)}}
    first, _ = repository.commit_and_push("main", files, [], "First", ("Ada", "ada@example.com"), "1767600000 +0000")
    changes = {"Dockerfile": "FROM scratch\nLABEL v=2\n", **{f"src/f{i}.py": "x = 1\n" for i in range(4)}}
    second, _ = repository.commit_and_push(
        "main", changes, ["old.txt"], "Second\n\nbody", ("Ada", "ada@example.com"), "1767600060 +0000"
    )
    return {"first": first, "second": second}


def client(emulator: Emulator, service: str) -> Any:
    assert emulator.front is not None
    return boto3.client(service, endpoint_url=emulator.front.endpoint_for("test"), region_name="us-east-1")


def test_get_differences_pages_through_every_change(emulator: Emulator, commits: dict[str, str]) -> None:
    codecommit = client(emulator, "codecommit")
    request = {
        "repositoryName": "demo-app",
        "beforeCommitSpecifier": commits["first"],
        "afterCommitSpecifier": commits["second"],
        "MaxResults": 2,
    }
    pages = [codecommit.get_differences(**request)]
    while pages[-1].get("NextToken"):
        pages.append(codecommit.get_differences(**request, NextToken=pages[-1]["NextToken"]))

    changes = [
        (item["changeType"], (item.get("afterBlob") or item.get("beforeBlob"))["path"])
        for page in pages
        for item in page["differences"]
    ]

    assert len(pages) == 3
    assert sorted(changes) == sorted(
        [("M", "Dockerfile"), ("D", "old.txt")] + [("M", f"src/f{i}.py") for i in range(4)]
    )


def test_get_commit_answers_from_git(emulator: Emulator, commits: dict[str, str]) -> None:
    commit = client(emulator, "codecommit").get_commit(repositoryName="demo-app", commitId=commits["second"])["commit"]

    assert commit["parents"] == [commits["first"]]
    assert commit["message"].startswith("Second")
    assert commit["author"]["name"] == "Ada"
    assert commit["author"]["date"] == "1767600060 +0000"


def test_get_file_returns_the_content_at_the_commit(emulator: Emulator, commits: dict[str, str]) -> None:
    answer = client(emulator, "codecommit").get_file(
        repositoryName="demo-app", commitSpecifier=commits["first"], filePath="Dockerfile"
    )

    assert answer["fileContent"] == b"FROM scratch\n"
    assert answer["fileMode"] == "NORMAL"


def test_unknown_commit_is_a_codecommit_error(emulator: Emulator) -> None:
    with pytest.raises(ClientError) as raised:
        client(emulator, "codecommit").get_commit(repositoryName="demo-app", commitId="f" * 40)

    assert raised.value.response["Error"]["Code"] == "CommitDoesNotExistException"


def _start(emulator: Emulator, commit: str, token: str, tag: str | None = None) -> dict[str, Any]:
    assert emulator.codebuild is not None
    project = next(iter(emulator.codebuild.projects))
    return client(emulator, "codebuild").start_build(
        projectName=project,
        sourceVersion=commit,
        sourceLocationOverride="https://git-codecommit.us-east-1.amazonaws.com/v1/repos/demo-app",
        idempotencyToken=token,
        environmentVariablesOverride=[
            {
                "name": "ECR_REPOSITORY_URI",
                "value": "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-pipeline/demo-app",
                "type": "PLAINTEXT",
            },
            {"name": "IMAGE_TAG", "value": tag or build_tag(commit), "type": "PLAINTEXT"},
        ],
    )["build"]


def test_start_build_with_the_same_token_returns_the_same_build(emulator: Emulator, commits: dict[str, str]) -> None:
    first = _start(emulator, commits["first"], "token-1")
    again = _start(emulator, commits["first"], "token-1")

    assert again["id"] == first["id"]
    with pytest.raises(ClientError) as raised:
        _start(emulator, commits["second"], "token-1")
    assert raised.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"


def test_build_pushes_the_commit_image_and_emits_push_and_scan_events(
    emulator: Emulator, commits: dict[str, str]
) -> None:
    build = _start(emulator, commits["second"], "token-2")
    emulator.run_until_idle()

    done = client(emulator, "codebuild").batch_get_builds(ids=[build["id"]])["builds"][0]
    seen = [entry["event"]["detail-type"] for entry in emulator.timeline if entry["kind"] == "event"]
    pushed = [
        entry["event"]["detail"]
        for entry in emulator.timeline
        if entry["kind"] == "event"
        and entry["event"]["detail-type"] == "ECR Image Action"
        and entry["event"]["detail"].get("image-tag") == build_tag(commits["second"])
    ]

    assert done["buildStatus"] == "SUCCEEDED"
    assert done["resolvedSourceVersion"] == commits["second"]
    assert len(pushed) == 1 and pushed[0]["action-type"] == "PUSH"
    assert "ECR Image Scan" in seen


def test_same_commit_gives_the_same_digest_on_a_retag(emulator: Emulator, commits: dict[str, str]) -> None:
    ecr = client(emulator, "ecr")
    build_image = {"imageTag": build_tag(commits["second"])}
    image = ecr.batch_get_image(repositoryName=ECR_REPOSITORY, imageIds=[build_image])["images"][0]

    retag = ecr.put_image(repositoryName=ECR_REPOSITORY, imageManifest=image["imageManifest"], imageTag="main")["image"]
    pushes = [
        entry["event"]["detail"]
        for entry in emulator.timeline
        if entry["kind"] == "event" and entry["event"]["detail"].get("image-tag") == "main"
    ]

    assert retag["imageId"]["imageDigest"] == image["imageId"]["imageDigest"]
    assert pushes == [
        {
            "result": "SUCCESS",
            "repository-name": ECR_REPOSITORY,
            "image-digest": retag["imageId"]["imageDigest"],
            "action-type": "PUSH",
            "image-tag": "main",
        }
    ]


def test_build_told_to_fail_ends_failed_without_an_image(emulator: Emulator, commits: dict[str, str]) -> None:
    assert emulator.codebuild is not None
    emulator.codebuild.fail_next.append("unit tests failed")
    build = _start(emulator, commits["first"], "token-3", tag="never-pushed")
    emulator.run_until_idle()

    done = client(emulator, "codebuild").batch_get_builds(ids=[build["id"]])["builds"][0]
    images = client(emulator, "ecr").describe_images(repositoryName=ECR_REPOSITORY)["imageDetails"]

    assert done["buildStatus"] == "FAILED"
    assert "never-pushed" not in [tag for image in images for tag in image.get("imageTags", [])]


def test_busy_deployment_group_refuses_a_deployment_while_its_active_one_runs(emulator: Emulator) -> None:
    assert emulator.codedeploy is not None
    busy = emulator.codedeploy.occupy(("demo-app", "demo-app-dev"), 1)
    emulator.run_until_idle()
    appspec = {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/demo-app-dev:1",
                        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080},
                    },
                }
            }
        ],
    }
    request = {
        "applicationName": "demo-app",
        "deploymentGroupName": "demo-app-dev",
        "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
    }
    codedeploy = client(emulator, "codedeploy")
    active = codedeploy.list_deployments(
        applicationName="demo-app", deploymentGroupName="demo-app-dev", includeOnlyStatuses=["InProgress"]
    )["deployments"]

    with pytest.raises(ClientError) as raised:
        codedeploy.create_deployment(**request)
    emulator.run_until_idle()
    deployment_id = codedeploy.create_deployment(**request)["deploymentId"]
    emulator.run_until_idle()

    def states(deployment: str) -> list[str]:
        return [
            entry["event"]["detail"]["state"]
            for entry in emulator.timeline
            if entry["kind"] == "event" and entry["event"]["detail"].get("deploymentId") == deployment
        ]

    assert active == [busy.id]
    assert raised.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert states(busy.id) == ["START", "SUCCESS"]
    assert states(deployment_id) == ["START", "SUCCESS"]
    assert codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "Succeeded"


def test_slack_refuses_a_header_longer_than_150_characters() -> None:
    payload = {"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}

    assert block_kit_problems(payload) == ["invalid_blocks: blocks[0].text is longer than 150 characters"]


def test_slack_refuses_more_than_ten_section_fields() -> None:
    fields = [{"type": "mrkdwn", "text": str(index)} for index in range(11)]

    assert block_kit_problems({"text": "x", "blocks": [{"type": "section", "fields": fields}]}) == [
        "invalid_blocks: blocks[0] has 11 fields (max 10)"
    ]


def test_build_of_a_dockerfile_without_from_fails(emulator: Emulator) -> None:
    repository = emulator.git_repositories["demo-app"]
    commit, _ = repository.commit_and_push(
        "broken", {"Dockerfile": "RUN make\n"}, [], "No base image", ("Ada", "ada@example.com"), "1767600120 +0000"
    )
    build = _start(emulator, commit, "token-4")
    emulator.run_until_idle()

    done = client(emulator, "codebuild").batch_get_builds(ids=[build["id"]])["builds"][0]

    assert done["buildStatus"] == "FAILED"
    assert done["phases"][-1]["contexts"][0]["message"] == "docker build: Dockerfile has no FROM instruction"


def test_get_repository_describes_the_git_repository(emulator: Emulator, commits: dict[str, str]) -> None:
    metadata = client(emulator, "codecommit").get_repository(repositoryName="demo-app")["repositoryMetadata"]

    assert metadata["defaultBranch"] == "main"
    assert metadata["cloneUrlHttp"] == "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/demo-app"
    assert metadata["Arn"] == "arn:aws:codecommit:us-east-1:123456789012:demo-app"
