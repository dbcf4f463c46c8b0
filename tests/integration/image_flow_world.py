"""A moto world for the image flow (tag_image, scan_check, deploy): tables, the ECR repository,
an ECS service behind a CodeDeploy blue/green group, pushes in the ledger, and the handlers."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import yaml

from ecr_pipeline.adapters import clients
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.naming import BUILD_TAG_FILTER, build_tag
from ecr_pipeline.records import ImageRecord, PushRecord
from tests.handlers import FakeLambdaContext, load_handler

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
REPOSITORY_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/demo-app"
COMMIT = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"
BUILD_TAG = build_tag(COMMIT)
SERVICES = ("dynamodb", "ecr", "events", "ecs", "codedeploy", "sqs")


def make_repository(scan_on_push: bool = True, mutability: str = "MUTABLE") -> None:
    """The demo-app repository; `MUTABLE_WITH_EXCLUSION` keeps build tags immutable, as the template does."""
    exclusion: dict[str, Any] = {}
    if mutability.endswith("_WITH_EXCLUSION"):
        # moto matches an exclusion filter as a regular expression, ECR as a wildcard: the regex of BUILD_TAG_FILTER.
        pattern = "^" + ".*".join(re.escape(part) for part in BUILD_TAG_FILTER.split("*")) + "$"
        exclusion["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": pattern}]
    boto3.client("ecr").create_repository(
        repositoryName="demo-app",
        imageScanningConfiguration={"scanOnPush": scan_on_push},
        imageTagMutability=mutability,
        **exclusion,
    )


def put_build_image(commit: str = COMMIT) -> str:
    """Push an image manifest tagged with the commit's build tag, as the build does; returns its digest."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "digest": "sha256:" + commit[:8] * 8,
                "size": 1,
                "mediaType": "application/vnd.oci.image.config.v1+json",
            },
            # moto derives the digest from the layer digests: one layer per commit keeps digests apart.
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "size": 1,
                    "digest": "sha256:" + hashlib.sha256(commit.encode()).hexdigest(),
                }
            ],
        }
    )
    response = boto3.client("ecr").put_image(
        repositoryName="demo-app", imageManifest=manifest, imageTag=build_tag(commit)
    )
    return str(response["image"]["imageId"]["imageDigest"])


def tags_of(digest: str) -> set[str]:
    response = boto3.client("ecr").describe_images(repositoryName="demo-app", imageIds=[{"imageDigest": digest}])
    return set(response["imageDetails"][0].get("imageTags", []))


def make_ecs_service() -> str:
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName="demo-cluster")
    registered = ecs.register_task_definition(
        family="demo-app",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/demo-app-task-execution",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "web", "image": f"{REPOSITORY_URI}:old", "portMappings": [{"containerPort": 8080}]},
            {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"},
        ],
    )
    arn = str(registered["taskDefinition"]["taskDefinitionArn"])
    ecs.create_service(
        cluster="demo-cluster",
        serviceName="demo-app-dev",
        taskDefinition=arn,
        desiredCount=1,
        deploymentController={"type": "CODE_DEPLOY"},
    )
    codedeploy = boto3.client("codedeploy")
    codedeploy.create_application(applicationName="demo-app", computePlatform="ECS")
    codedeploy.create_deployment_group(
        applicationName="demo-app",
        deploymentGroupName="demo-app-dev",
        serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/codedeploy",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        ecsServices=[{"serviceName": "demo-app-dev", "clusterName": "demo-cluster"}],
    )
    return arn


def record_push(
    ref_type: str = "branch",
    ref: str = "main",
    commit: str = COMMIT,
    time: str = "2026-11-28T10:05:00.000000Z",
    push_id: str | None = None,
) -> PushRecord:
    push_id = push_id or f"{time}#{ref_type}#{ref}"
    push = PushRecord("demo-app", ref_type, ref, commit, time, push_id, "Ada Lovelace", "Add login")
    Ledger("ledger").record_push(push)
    return push


def register_image(
    digest: str,
    commit: str = COMMIT,
    verdict: str | None = "PASSED",
    reasons: tuple[str, ...] = ("within the policy (CRITICAL 0/0, HIGH 0/0)",),
) -> None:
    """What the pipeline itself writes for a built image: tag_image's image item and, when given,
    scan_check's verdict. The functions act only on what these back (core/trust.py)."""
    ledger = Ledger("ledger")
    ledger.record_image(
        ImageRecord("demo-app", digest, commit, "demo-app", "2026-11-28T10:09:38.000000Z", REPOSITORY_URI)
    )
    if verdict is not None:
        ledger.record_verdict("demo-app", digest, verdict, list(reasons), "basic")


def write_config(tmp_path: Path, change: dict[str, Any]) -> Path:
    """pipeline.yaml with `change` merged into the demo-app image's settings."""
    document = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8"))
    image = document["repositories"]["demo-app"]["images"]["demo-app"]
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(image.get(key), dict):
            image[key].update(value)
        else:
            image[key] = value
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@dataclass
class Function:
    """One handler module, with the AWS calls it makes and the events it publishes."""

    app: ModuleType
    name: str
    published: list[dict[str, Any]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.app.handler(event, FakeLambdaContext(function_name=self.name))
        return result

    def details(self, detail_type: str) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for e in self.published if e["DetailType"] == detail_type]

    def detail_types(self) -> list[str]:
        return [event["DetailType"] for event in self.published]

    def as_events(self, detail_type: str) -> list[dict[str, Any]]:
        """What EventBridge would deliver for each published entry of this type."""
        return [
            {
                "version": "0",
                "id": f"{self.name}-{index}",
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": ACCOUNT,
                "time": "2026-11-28T10:20:00Z",
                "region": REGION,
                "resources": entry.get("Resources", []),
                "detail": json.loads(entry["Detail"]),
            }
            for index, entry in enumerate(self.published)
            if entry["DetailType"] == detail_type
        ]


def load_function(name: str, monkeypatch: pytest.MonkeyPatch, config_path: Path | None = None) -> Function:
    monkeypatch.setenv("LEDGER_TABLE", "ledger")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    if config_path is not None:
        monkeypatch.setenv("PIPELINE_CONFIG", str(config_path))
    function = Function(app=load_handler(name), name=name)

    def record_event(params: dict[str, Any], **_: Any) -> None:
        function.published.extend(params["Entries"])

    def count_call(model: Any, **_: Any) -> None:
        function.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    # The handler module has just been imported: the cached clients are the ones it uses.
    # Registered first and as specific as Stubber's hook, so stubbed calls are counted too.
    for service in SERVICES:
        clients.client(service).meta.events.register_first("before-call.*.*", count_call)
    clients.client("events").meta.events.register("provide-client-params.events.PutEvents", record_event)
    return function
