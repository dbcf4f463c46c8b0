"""A second application added in pipeline.yaml alone runs on the stock template.yaml.

The run is given only `--config`: the template's loops make the new ECR repositories, rules and
IAM statements from the parameters that pipeline.yaml gives the stack.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import REPO_ROOT, run

pytestmark = pytest.mark.e2e

SCENARIOS = REPO_ROOT / "emulator" / "scenarios"


def applications_run(**options: Any) -> dict[str, Any]:
    return run(SCENARIOS / "applications.yaml", config=SCENARIOS / "applications.pipeline.yaml", **options)


def commits_built(report: dict[str, Any], repository: str) -> list[str]:
    return [image["commit"] for image in report["final_state"]["images"].get(repository, [])]


def tags_of(report: dict[str, Any], repository: str, commit: str) -> set[str]:
    image = next(image for image in report["final_state"]["images"][repository] if image["commit"] == commit)
    return set(image["tags"])


def environment(report: dict[str, Any], service: str) -> dict[str, Any]:
    return next(env for env in report["final_state"]["environments"] if env["service"] == service)


def step_commit(report: dict[str, Any], number: int) -> str:
    entry = next(e for e in report["timeline"] if e["kind"] == "step" and e["step"] == number)
    return str(entry["commit"])


def test_a_second_application_is_built_scanned_promoted_and_deployed() -> None:
    report = applications_run()
    first, worker_only = step_commit(report, 1), step_commit(report, 2)

    # Path filters: both services from the first push, only the worker from the worker-only change.
    assert commits_built(report, "ecr-pipeline/orders-api") == [first]
    assert sorted(commits_built(report, "ecr-pipeline/orders-worker")) == sorted([first, worker_only])
    for repository in ("ecr-pipeline/orders-api", "ecr-pipeline/orders-worker"):
        for image in report["final_state"]["images"][repository]:
            assert image["scan"]["status"] == "COMPLETE" and f"main-{image['commit'][:7]}" in image["tags"], image
    # The moving tags sit on each repository's newest image.
    assert {"main", "latest"} <= tags_of(report, "ecr-pipeline/orders-api", first)
    assert {"main", "latest"} <= tags_of(report, "ecr-pipeline/orders-worker", worker_only)
    assert "main" not in tags_of(report, "ecr-pipeline/orders-worker", first)
    api, worker = environment(report, "orders-api-staging"), environment(report, "orders-worker-staging")
    assert (api["commit"], worker["commit"]) == (first, worker_only)
    assert api["image"].startswith("123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-pipeline/orders-api@sha256:")
    assert all(check["passed"] for check in report["checks"]), [c for c in report["checks"] if not c["passed"]]


def test_a_second_application_survives_duplicated_shuffled_delivery() -> None:
    # Permission gaps of every built-in scenario, this one included: test_strict_permissions.py.
    report = applications_run(duplicate=True, shuffle_seed=8)

    assert environment(report, "orders-worker-staging")["commit"] == step_commit(report, 2)
