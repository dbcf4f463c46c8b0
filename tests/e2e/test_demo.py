"""The demo scenario, end to end: what each push leads to, as far as the template's functions go."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import RunScenario, requires
from tests.e2e.helpers import builds_of, deliveries, events, image_of, step

pytestmark = pytest.mark.e2e


def test_main_push_builds_the_pushed_commit_once(run_demo: RunScenario) -> None:
    report = run_demo()
    commit = step(report, 1)["commit"]

    builds = builds_of(report, commit)

    assert [build["status"] for build in builds] == ["SUCCEEDED"]
    assert builds[0]["image_tag"] == f"sha-{commit}"
    assert image_of(report, commit) is not None


def test_feature_branch_push_builds_from_its_branch(run_demo: RunScenario) -> None:
    report = run_demo()
    commit = step(report, 2)["commit"]

    builds = builds_of(report, commit)

    assert [(build["status"], build["source_branch"]) for build in builds] == [("SUCCEEDED", "feature/Greeting")]


def test_docs_only_push_starts_no_build(run_demo: RunScenario) -> None:
    report = run_demo()
    commit = step(report, 3)["commit"]

    skipped = [event for event in events(report, "Build Skipped") if event["detail"]["commit"] == commit]

    assert builds_of(report, commit) == []
    assert image_of(report, commit) is None
    assert len(skipped) == 1


def test_release_tag_promotes_the_built_image_without_a_build(run_demo: RunScenario) -> None:
    report = run_demo()
    tagged = step(report, 4)

    requested = [event for event in events(report, "Promotion Requested") if event["detail"]["ref"] == "v1.0.0"]

    assert tagged["commit"] == step(report, 1)["commit"]
    assert [build for build in report["final_state"]["builds"] if build["source_branch"] == "v1.0.0"] == []
    assert len(requested) == 1


def test_scan_reports_the_findings_the_scenario_chose(run_demo: RunScenario) -> None:
    report = run_demo()

    blocked = image_of(report, step(report, 5)["commit"])
    clean = image_of(report, step(report, 1)["commit"])

    assert blocked is not None and blocked["scan"] == {"status": "COMPLETE", "counts": {"CRITICAL": 1, "HIGH": 1}}
    assert clean is not None and clean["scan"] == {"status": "COMPLETE", "counts": {}}


def test_images_are_listed_in_push_order_with_the_ledgers_verdict(run_demo: RunScenario) -> None:
    report = run_demo()

    listed = [(image["commit"], image["verdict"]) for image in report["final_state"]["images"]["ecr-pipeline/demo-app"]]

    assert listed == [
        (step(report, 1)["commit"], "PASSED"),
        (step(report, 2)["commit"], "PASSED"),
        (step(report, 5)["commit"], "BLOCKED"),
    ]


def test_build_events_carry_the_environment_overrides(run_demo: RunScenario) -> None:
    report = run_demo()
    commit = step(report, 1)["commit"]

    succeeded = [
        event["detail"]
        for event in events(report, "CodeBuild Build State Change")
        if event["detail"]["build-status"] == "SUCCEEDED"
        and event["detail"]["additional-information"]["source-version"] == commit
    ]
    variables = {
        item["name"]: item["value"]
        for item in succeeded[0]["additional-information"]["environment"]["environment-variables"]
    }

    assert variables["IMAGE_TAG"] == f"sha-{commit}"
    assert variables["ECR_REPOSITORY_URI"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-pipeline/demo-app"
    assert variables["SOURCE_BRANCH"] == "main"


def test_push_event_has_codecommit_shape(run_demo: RunScenario) -> None:
    report = run_demo()
    first_push = next(event for event in events(report, "CodeCommit Repository State Change"))

    assert first_push["source"] == "aws.codecommit"
    assert first_push["detail"]["event"] == "referenceCreated"
    assert first_push["detail"]["referenceFullName"] == "refs/heads/main"
    assert "oldCommitId" not in first_push["detail"]
    assert first_push["detail"]["commitId"] == step(report, 1)["commit"]


def test_no_delivery_fails(run_demo: RunScenario) -> None:
    report = run_demo()

    failed = [(entry["function"], entry["reason"]) for entry in deliveries(report) if entry["outcome"] == "failed"]

    assert failed == []
    assert report["final_state"]["failed_invocations"] == []
    assert report["emulator_faults"] == []


def test_passed_main_image_gets_promotion_tags(run_demo: RunScenario, template_functions: set[str]) -> None:
    requires("TagImageFunction", template_functions)
    report = run_demo()

    main_image = image_of(report, step(report, 1)["commit"])
    feature_image = image_of(report, step(report, 2)["commit"])

    assert main_image is not None and {"latest", "main", "1.0.0", "1.0", "1"} <= set(main_image["tags"])
    assert feature_image is not None and "feature-greeting" in feature_image["tags"]
    assert "latest" not in feature_image["tags"]


def test_blocked_image_keeps_only_its_build_tag(run_demo: RunScenario, template_functions: set[str]) -> None:
    requires("TagImageFunction", template_functions)
    requires("ScanCheckFunction", template_functions)
    report = run_demo()
    commit = step(report, 5)["commit"]

    verdicts = [
        event["detail"]["verdict"] for event in events(report, "Scan Verdict") if event["detail"]["commit"] == commit
    ]
    blocked = image_of(report, commit)

    assert set(verdicts) == {"BLOCKED"}
    assert blocked is not None and blocked["tags"] == [f"sha-{commit}"]


def test_dev_runs_the_last_passed_main_image(run_demo: RunScenario, template_functions: set[str]) -> None:
    requires("DeployFunction", template_functions)
    report = run_demo()

    (dev,) = [
        environment for environment in report["final_state"]["environments"] if environment["environment"] == "dev"
    ]

    assert dev["commit"] == step(report, 1)["commit"]
    assert [deployment["status"] for deployment in dev["deployments"]] == ["Succeeded"]


def test_every_slack_message_is_accepted(run_demo: RunScenario, template_functions: set[str]) -> None:
    requires("NotifyFunction", template_functions)
    report = run_demo()

    slack = report["final_state"]["slack_messages"]

    assert slack, "notify sent nothing to Slack"
    assert [message["error"] for message in slack if not message["accepted"]] == []


def test_blocked_image_is_announced_on_the_topic(run_demo: RunScenario, template_functions: set[str]) -> None:
    requires("NotifyFunction", template_functions)
    requires("ScanCheckFunction", template_functions)
    report = run_demo()
    short_commit = step(report, 5)["commit"][:7]

    subjects = [str(message["subject"]) for message in report["final_state"]["sns_messages"]]

    assert [subject for subject in subjects if short_commit in subject and "blocked" in subject.lower()]


def test_every_expectation_of_the_demo_is_met(run_demo: RunScenario) -> None:
    report = run_demo()

    assert report["checks"], "the demo scenario states no expectations"
    assert [check for check in report["checks"] if not check["passed"]] == []
