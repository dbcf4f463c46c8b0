"""Docker mode: the demo's builds run the template's buildspec for real, ECR's registry is real, dev serves.

Each scenario runs once (a module fixture) and the checks look at the running emulator: the
registry, the engine and the environment's endpoint, before it stops. In CI a missing engine is
a failure; elsewhere these tests skip with the command that installs one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.__main__ import DEMO_SCENARIO, run_scenario
from emulator.core import Emulator, Options
from emulator.ecr_registry import ECR_HOST
from emulator.output import Printer
from tests.e2e.conftest import REPO_ROOT
from tests.e2e.helpers import ecs_variant, step
from tests.engine import needs_engine

pytestmark = [pytest.mark.e2e, needs_engine]

REPOSITORY = "ecr-pipeline/demo-app"
FAILURES = REPO_ROOT / "emulator" / "scenarios" / "docker" / "failures.yaml"
# The four ECR push steps, as the template's buildspec runs them (their lines in the build log).
PUSH_STEPS = (
    r"aws ecr get-login-password .*\| docker login --username AWS --password-stdin",
    r"DOCKER_BUILDKIT=1 docker build",
    r'docker tag "local/image:\$IMAGE_TAG" "\$ECR_REPOSITORY_URI:\$IMAGE_TAG"',
    r'docker push "\$ECR_REPOSITORY_URI:\$IMAGE_TAG"',
)


def _run(scenario: Path, tmp: Path, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report, and what was looked at while the emulator still ran."""
    seen: dict[str, Any] = {}

    def look(emulator: Emulator, report: dict[str, Any]) -> None:
        assert emulator.docker is not None and emulator.docker.engine is not None
        registry: dict[tuple[str, str], str | None] = {}
        for repository, images in report["final_state"]["images"].items():
            for image in images:
                for tag in image["tags"]:
                    registry[(repository, tag)] = emulator.docker.registry_digest(repository, tag)
        seen["registry"] = registry
        # A developer's pull: any principal of the account with a token may pull.
        emulator.docker.login("developer")
        pulls = {}
        for tag in ("latest", "1.0.0", "1.0", "1"):
            reference = f"{ECR_HOST}/{REPOSITORY}:{tag}"
            emulator.docker.engine.run("image", "rm", reference, check=False)
            pulled = emulator.docker.engine.run("pull", reference, check=False, timeout=120)
            digest = re.search(r"^Digest: (sha256:[0-9a-f]{64})$", pulled.stdout, re.MULTILINE)
            pulls[tag] = (pulled.returncode, pulled.stderr.strip(), digest.group(1) if digest else None)
        seen["pulls"] = pulls
        seen["refused_hosts"] = list(emulator.docker.front.refused_hosts) if emulator.docker.front else []

    run_options = Options(printer=Printer(enabled=False), builds="docker", work_dir=tmp / "work", **options)
    report = run_scenario(scenario, run_options, while_running=look)
    return report, seen


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    yield _run(DEMO_SCENARIO, tmp_path_factory.mktemp("docker-demo"))


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    yield _run(FAILURES, tmp_path_factory.mktemp("docker-failures"))


@pytest.fixture(scope="module")
def ecs_failures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The same failures with the deploy target of strategy ecs: ECS's own blue/green runs the task."""
    directory = tmp_path_factory.mktemp("docker-ecs-failures")
    yield _run(FAILURES, directory, config=ecs_variant(REPO_ROOT / "pipeline.yaml", directory))


def _cached(instruction: str, log: str) -> bool | None:
    """Whether BuildKit's progress in the log took the Dockerfile step from the cache (None: no such step)."""
    step = re.search(r"^#(\d+) \[\d+/\d+\] " + re.escape(instruction), log, re.MULTILINE)
    if step is None:
        return None
    return re.search(rf"^#{step.group(1)} CACHED$", log, re.MULTILINE) is not None


def _succeeded(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [build for build in report["final_state"]["builds"] if build["status"] == "SUCCEEDED"]


def test_demo_meets_every_expectation_with_no_permission_gap(demo: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, _ = demo

    assert [check for check in report["checks"] if not check["passed"]] == []
    assert report["permission_gaps"] == []
    assert report.get("emulator_faults", []) == []


def test_every_successful_build_ran_the_four_push_steps(demo: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, _ = demo
    builds = _succeeded(report)

    assert len(builds) == 3  # main, the feature branch, the vulnerable commit
    for build in builds:
        log = Path(build["log"]).read_text(encoding="utf-8")
        for command in PUSH_STEPS:
            assert re.search(command, log), f"build #{build['number']} log lacks {command!r}"
        assert "Login Succeeded" in log
        assert f"The push refers to repository [{ECR_HOST}/{REPOSITORY}]" in log
        assert re.search(r"sha-[0-9a-f]{40}: digest: " + re.escape(build["image_digest"]), log)


def test_every_ecr_digest_is_the_registry_digest(demo: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, seen = demo
    expected = {
        (repository, tag): image["digest"]
        for repository, images in report["final_state"]["images"].items()
        for image in images
        for tag in image["tags"]
    }

    assert expected and seen["registry"] == expected


def test_latest_and_semver_tags_pull_the_promoted_image(demo: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, seen = demo
    promoted = next(image for image in report["final_state"]["images"][REPOSITORY] if "latest" in image["tags"])

    for tag, (status, error, digest) in seen["pulls"].items():
        assert status == 0, f"docker pull :{tag}: {error}"
        assert digest == promoted["digest"], tag


def test_dev_serves_the_deployed_commit(demo: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, _ = demo
    dev = next(item for item in report["final_state"]["environments"] if item["environment"] == "dev")

    assert dev["serving"]["commit"] == dev["commit"]
    assert dev["serving"]["answer"] == f"Hello from the demo app (version {dev['commit']})"
    assert dev["serving"]["endpoint"].startswith("http://127.0.0.1:")


def test_the_second_build_takes_unchanged_layers_from_the_registry_cache(
    demo: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, _ = demo
    first, second = _succeeded(report)[:2]
    first_log = Path(first["log"]).read_text(encoding="utf-8")
    second_log = Path(second["log"]).read_text(encoding="utf-8")

    # Each build starts on a clean engine: the cache it finds is the previous image in ECR.
    assert "importing cache manifest from" in second_log
    assert _cached("RUN python -m venv", second_log) is True
    assert _cached("COPY app/", second_log) is False
    assert _cached("RUN python -m venv", first_log) is False


def test_nothing_but_ecr_was_asked_for(demo: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, seen = demo

    assert seen["refused_hosts"] == []


def test_a_failing_run_fails_the_build_with_the_command_in_log_and_slack(
    failures: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, _ = failures
    failed = [build for build in report["final_state"]["builds"] if build["status"] == "FAILED"]

    assert [check for check in report["checks"] if not check["passed"]] == []
    assert len(failed) == 1
    log = Path(failed[0]["log"]).read_text(encoding="utf-8")
    assert "RUN python -c \"import json; json.load(open('/app/settings.json'))\"" in log
    assert "No such file or directory: '/app/settings.json'" in log
    assert "COMMAND_EXECUTION_ERROR" in log
    slack = [
        message
        for message in report["final_state"]["slack_messages"]
        if message["accepted"] and "Build failed" in str(message["header"] or message["text"])
    ]
    assert len(slack) == 1
    assert "docker build" in str(slack[0]["payload"])


@pytest.mark.parametrize("strategy", ["codedeploy", "ecs"])
def test_a_failing_health_check_rolls_back_leaves_the_previous_version_serving_and_is_told(
    strategy: str, request: pytest.FixtureRequest
) -> None:
    report, _ = request.getfixturevalue("failures" if strategy == "codedeploy" else "ecs_failures")
    dev = next(item for item in report["final_state"]["environments"] if item["environment"] == "dev")
    first_commit = step(report, 1)["commit"]

    assert dev["strategy"] == strategy
    assert [deployment["outcome"] for deployment in dev["deployments"]] == ["Succeeded", "Failed"]
    assert dev["commit"] == first_commit
    assert dev["serving"]["commit"] == first_commit
    assert first_commit in dev["serving"]["answer"]
    assert dev["ledger"]["serving"]["commit"] == first_commit
    told = [
        message
        for message in report["final_state"]["slack_messages"]
        if message["accepted"] and "Deployment rolled back" in str(message["header"] or message["text"])
    ]
    assert len(told) == 1
    assert "health check" in str(told[0])
    assert report["permission_gaps"] == []
