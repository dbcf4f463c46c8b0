"""Both deployment strategies on the emulator: `codedeploy` (the demo's pipeline.yaml) and `ecs` (the same
configuration with the deploy target switched to ECS's own blue/green). Same final state, ordering under
duplicates and shuffling, a busy target, a failing deployment rolled back and told, and an image whose
verdict turns BLOCKED between its promotion and its traffic shift, stopped by the gate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ecr_pipeline.delivery_metrics import environment_metrics
from ecr_pipeline.records import DeploymentRecord
from tests.e2e.conftest import DEMO_SCENARIO, run
from tests.e2e.helpers import deliveries, ecs_variant, events, step

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ("codedeploy", "ecs")
ALARM = "demo-app-dev-target-5xx"

BUSY_THEN_ROLLED_BACK = f"""
name: busy-then-rolled-back
steps:
  - deployment_busy: {{environment: dev, times: 2}}
  - commit: {{branch: main, message: "First", files: {{Dockerfile: "FROM scratch\\n", app.txt: "1\\n"}}}}
  - deployment_fails: {{environment: dev, alarm: {ALARM}}}
  - commit: {{branch: main, message: "Second", files: {{app.txt: "2\\n"}}}}
"""

BLOCKED_AT_THE_SHIFT = """
name: blocked-at-the-traffic-shift
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n", app.txt: "1\\n"}}
  - findings_at_traffic_shift:
      next: true
      findings: [{id: CVE-2026-31337, severity: CRITICAL, package: openssl, version: 3.0.1, fixed_in: 3.0.2}]
  - commit: {branch: main, message: "Second", files: {app.txt: "2\\n"}}
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's pipeline.yaml, and the same with its deploy target of strategy ecs (canary traffic)."""
    shipped = ROOT / "pipeline.yaml"
    return {"codedeploy": shipped, "ecs": ecs_variant(shipped, tmp_path_factory.mktemp("strategies"))}


def scenario_file(tmp_path_factory: pytest.TempPathFactory, name: str, text: str) -> Path:
    path = tmp_path_factory.mktemp(name) / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def dev(report: dict[str, Any]) -> dict[str, Any]:
    (environment,) = [item for item in report["final_state"]["environments"] if item["environment"] == "dev"]
    return environment


def by_the_pipeline(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in dev(report)["deployments"] if item["caller"] == "DeployFunction"]


def deployment_messages(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in report["final_state"]["sns_messages"] if str(m["subject"]).startswith("Deployment")]


def headlines(report: dict[str, Any]) -> list[str]:
    return [str(message["subject"]).split(":", 1)[0] for message in deployment_messages(report)]


def assert_clean(report: dict[str, Any]) -> None:
    assert report["permission_gaps"] == []
    assert report["emulator_faults"] == []
    assert [check for check in report["checks"] if not check["passed"]] == []


@pytest.mark.parametrize("options", [{}, {"duplicate": True, "shuffle_seed": 5}], ids=["plain", "duplicate-shuffle"])
def test_the_demo_ends_in_the_same_state_with_either_strategy(configs: dict[str, Path], options: dict) -> None:
    reports = {strategy: run(DEMO_SCENARIO, config=configs[strategy], **options) for strategy in STRATEGIES}

    for report in reports.values():
        assert_clean(report)
    commits = {strategy: step(report, 1)["commit"] for strategy, report in reports.items()}
    for strategy, report in reports.items():
        assert dev(report)["strategy"] == strategy
        # The demo's first push is deployed; the later ones are a feature branch, a tag and a blocked image.
        assert dev(report)["commit"] == commits[strategy]
        assert [item["outcome"] for item in by_the_pipeline(report)] == ["Succeeded"]
        assert dev(report)["ledger"]["serving"]["commit"] == commits[strategy]
        assert dev(report)["ledger"]["candidate"]["outcome"] == "SUCCEEDED"
    assert (
        headlines(reports["codedeploy"])
        == headlines(reports["ecs"])
        == [
            "Deployment started",
            "Deployment succeeded",
        ]
    )


@pytest.fixture(scope="module")
def rolled_back(configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    path = scenario_file(tmp_path_factory, "rolled-back", BUSY_THEN_ROLLED_BACK)
    return {strategy: run(path, config=configs[strategy]) for strategy in STRATEGIES}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_busy_target_turns_the_deployment_away_until_it_is_free(rolled_back: dict, strategy: str) -> None:
    report = rolled_back[strategy]

    assert dev(report)["deployments_refused"] == 2
    assert [item["outcome"] for item in by_the_pipeline(report)] == ["Succeeded", "Failed"]
    assert "Deployment queued" not in headlines(report)  # queued is told on the pipeline's own event
    assert_clean(report)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_alarm_rolls_the_deployment_back_and_one_message_says_which_and_what_serves(
    rolled_back: dict, strategy: str
) -> None:
    report = rolled_back[strategy]
    first, second = step(report, 2)["commit"], step(report, 4)["commit"]

    (message,) = [m for m in deployment_messages(report) if "rolled back" in str(m["subject"])]
    assert second[:7] in str(message["subject"])
    assert ALARM in str(message["message"])
    assert "Serving now" in str(message["message"]) and first[:12] in str(message["message"])
    assert dev(report)["commit"] == first
    ledger = dev(report)["ledger"]
    assert ledger["serving"]["commit"] == first
    assert ledger["candidate"]["commit"] == second
    assert ledger["candidate"]["outcome"] == "ROLLED_BACK"
    assert ALARM in ledger["candidate"]["outcome_reason"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_ledgers_deployment_history_gives_the_delivery_metrics(rolled_back: dict, strategy: str) -> None:
    report = rolled_back[strategy]
    history = [DeploymentRecord(**record) for record in dev(report)["ledger"]["history"]]
    first, second = step(report, 2)["commit"], step(report, 4)["commit"]

    assert [(record.commit, record.outcome) for record in history] == [(first, "SUCCEEDED"), (second, "ROLLED_BACK")]
    since, until = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    metrics = environment_metrics("dev", history, since, until)
    assert (metrics.ended, metrics.succeeded, metrics.failed, metrics.change_failure_rate) == (2, 1, 1, 0.5)
    # Its value is not checked here: the emulator's event clock (push times) runs ahead of the wall clock
    # its services end deployments by; tests/unit/test_delivery_metrics.py checks the arithmetic.
    assert metrics.lead_time_median_seconds is not None
    assert metrics.time_to_restore_median_seconds is None  # nothing succeeded after the rollback


@pytest.fixture(scope="module")
def gated(configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    path = scenario_file(tmp_path_factory, "gated", BLOCKED_AT_THE_SHIFT)
    return {strategy: run(path, config=configs[strategy]) for strategy in STRATEGIES}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_image_blocked_since_its_promotion_is_stopped_at_the_traffic_shift(gated: dict, strategy: str) -> None:
    report = gated[strategy]
    first, second = step(report, 1)["commit"], step(report, 3)["commit"]
    images = {image["commit"]: image for image in report["final_state"]["images"]["ecr-pipeline/demo-app"]}

    # Promoted: its scan passed, and only then did the findings grow.
    verdicts = {
        event["detail"]["verdict"] for event in events(report, "Scan Verdict") if event["detail"]["commit"] == second
    }
    assert verdicts == {"PASSED"}
    assert "latest" in images[second]["tags"]
    answers = [d["result"]["hookStatus"] for d in deliveries(report, "TrafficGateFunction")]
    assert answers == ["SUCCEEDED", "FAILED"]
    assert dev(report)["commit"] == first
    assert [item["outcome"] for item in by_the_pipeline(report)] == ["Succeeded", "Failed"]
    (message,) = [m for m in deployment_messages(report) if "rolled back" in str(m["subject"])]
    assert "stopped at the traffic shift" in str(message["message"])
    assert "BLOCKED now" in str(message["message"]) and "CRITICAL" in str(message["message"])
    assert dev(report)["ledger"]["serving"]["commit"] == first
    assert "CRITICAL" in dev(report)["ledger"]["candidate"]["gate_reason"]
    assert_clean(report)
