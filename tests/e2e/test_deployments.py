"""Deployments against a deployment group that is busy, or that fails."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import requires, run
from tests.e2e.helpers import image_of, step

pytestmark = pytest.mark.e2e

SCENARIO = """
name: busy-then-failing
steps:
  - deployment_group_busy: {group: demo-app-dev, times: 2}
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n"}}
  - deployment_group_fails: {group: demo-app-dev}
  - commit: {branch: main, message: "Second", files: {app.txt: "2\\n"}}
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("deployments") / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return run(path)


@pytest.fixture
def dev(report: dict, template_functions: set[str]) -> dict:
    requires("DeployFunction", template_functions)
    (environment,) = [item for item in report["final_state"]["environments"] if item["environment"] == "dev"]
    return environment


def _by_the_pipeline(dev: dict) -> list[dict]:
    """The environment's deployments the deploy function made (the busy group's own is made by ops)."""
    return [item for item in dev["deployments"] if item["caller"] == "DeployFunction"]


def test_busy_group_holds_a_real_deployment_until_it_has_refused_two(dev: dict) -> None:
    by_ops = [item for item in dev["deployments"] if item["caller"] == "emulator"]

    assert [item["status"] for item in by_ops] == ["Succeeded"]


def test_busy_group_is_retried_until_the_deployment_is_created(report: dict, dev: dict) -> None:
    image = image_of(report, step(report, 2)["commit"])

    assert image is not None
    assert dev["deployments_refused"] == 2
    assert _by_the_pipeline(dev)[0]["status"] == "Succeeded"
    assert str(_by_the_pipeline(dev)[0]["image"]).endswith(f"@{image['digest']}")


def test_failed_deployment_leaves_the_environment_on_the_previous_image(report: dict, dev: dict) -> None:
    assert [item["status"] for item in _by_the_pipeline(dev)] == ["Succeeded", "Failed"]
    assert dev["commit"] == step(report, 2)["commit"]


def test_failed_deployment_is_told_once_as_rolled_back(report: dict, dev: dict, template_functions: set[str]) -> None:
    requires("NotifyFunction", template_functions)

    subjects = [str(message["subject"]) for message in report["final_state"]["sns_messages"]]

    # The group rolls back automatically on a failure (DEPLOYMENT_FAILURE), as the target stack's does.
    (told,) = [subject for subject in subjects if subject.startswith("Deployment rolled back")]
    assert step(report, 4)["commit"][:7] in told
