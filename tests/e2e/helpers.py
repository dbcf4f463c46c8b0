"""Reading a run's report: the steps, events and deliveries of its timeline, and its end state."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml


def step(report: dict[str, Any], number: int) -> dict[str, Any]:
    return next(entry for entry in report["timeline"] if entry["kind"] == "step" and entry["step"] == number)


def events(report: dict[str, Any], detail_type: str) -> list[dict[str, Any]]:
    return [
        entry["event"]
        for entry in report["timeline"]
        if entry["kind"] == "event" and entry["event"]["detail-type"] == detail_type
    ]


def deliveries(report: dict[str, Any], function: str | None = None) -> list[dict[str, Any]]:
    return [
        entry
        for entry in report["timeline"]
        if entry["kind"] == "delivery" and (function is None or entry["function"] == function)
    ]


def image_of(report: dict[str, Any], commit: str, repository: str = "ecr-pipeline/demo-app") -> dict[str, Any] | None:
    return next((image for image in report["final_state"]["images"][repository] if image["commit"] == commit), None)


def builds_of(report: dict[str, Any], commit: str) -> list[dict[str, Any]]:
    return [build for build in report["final_state"]["builds"] if build["commit"] == commit]


def end_state(report: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on delivery order or duplicates: images and tags, builds, environments, messages."""
    state = report["final_state"]
    return {
        "images": {
            repository: sorted((image["commit"], tuple(image["tags"])) for image in images)
            for repository, images in state["images"].items()
        },
        "builds": sorted(Counter((build["commit"], build["status"]) for build in state["builds"]).items()),
        "environments": [
            (environment["environment"], environment["commit"], len(environment["deployments"]))
            for environment in state["environments"]
        ],
        "sns": sorted(str(message["subject"]) for message in state["sns_messages"]),
        "slack": sorted(str(message["header"] or message["text"]) for message in state["slack_messages"]),
    }


def ecs_variant(config: Path, directory: Path, traffic: str = "canary") -> Path:
    """A copy of a pipeline.yaml whose deploy targets use strategy ecs (ECS's own blue/green)."""
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    for repository in document["repositories"].values():
        for image in repository["images"].values():
            for target in image.get("deploy") or []:
                for name in ("codedeploy_application", "deployment_group"):
                    target.pop(name, None)
                target.update(strategy="ecs", traffic=traffic)
    path = directory / f"ecs.{config.name}"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def without_quiet_window(config: Path, directory: Path) -> Path:
    """A copy of a pipeline.yaml whose repositories build at once (build_window 0): a push to a branch
    with a running build supersedes it instead of waiting to be coalesced."""
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    for repository in document["repositories"].values():
        repository["build_window"] = 0
    path = directory / f"no-window.{config.name}"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# One push of each kind, for the stories and the metrics of `ecr-pipeline status` (run with no quiet
# window): 1 deployed then replaced by 5, 2 docs-only, 3 a git tag, 4 superseded by 5, 6 blocked by
# two of its three findings.
PUSHES_OF_EVERY_KIND = """
name: pushes-of-every-kind
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n", app.txt: "1\\n"}}
  - commit: {branch: main, message: "Docs only", files: {docs/guide.md: "# Guide\\n"}}
  - tag: {name: v1.0.0, ref: main~1}
  - wait: false
    commit: {branch: main, message: "Second", files: {app.txt: "2\\n"}}
  - commit: {branch: main, message: "Third", files: {app.txt: "3\\n"}}
  - commit:
      branch: main
      message: "Vulnerable"
      files: {app.txt: "4\\n"}
      scan_findings:
        - {id: CVE-2023-4863, severity: CRITICAL, package: libwebp, version: 1.2.4, fixed_in: 1.3.2}
        - {id: CVE-2023-5129, severity: HIGH, package: libwebp, version: 1.2.4, fixed_in: 1.3.2}
        - {id: CVE-2024-0727, severity: MEDIUM, package: openssl, version: 3.0.2, fixed_in: 3.0.13}
"""
