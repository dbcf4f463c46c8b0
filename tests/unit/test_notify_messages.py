"""The one message model, built from pipeline, CodeBuild and CodeDeploy events."""

from __future__ import annotations

import pytest

from ecr_pipeline.events.codebuild import BuildStateChange
from ecr_pipeline.events.envelope import MalformedEvent, parse_envelope
from ecr_pipeline.notify.model import Finding
from ecr_pipeline.notify.notifier import parse_notification, to_message
from ecr_pipeline.notify.words import message_from_pipeline_event
from tests.events import load_event
from tests.notify_fakes import (
    BUILD_ID,
    COMMIT,
    DIGEST,
    NEWER_BUILD_ID,
    MemoryLedger,
    ledger_for,
    message_for,
    pipeline_config,
)


def test_a_build_stopped_by_a_newer_push_is_told_as_superseded_not_failed() -> None:
    message = message_for("codebuild_stopped", ledger_for("codebuild_stopped"))
    assert (message.status, message.headline, message.severity) == ("SUPERSEDED", "Build superseded", "INFO")
    assert "failures" not in message.kinds
    assert NEWER_BUILD_ID in message.note


def test_a_build_stopped_without_a_newer_push_is_told_as_stopped() -> None:
    message = message_for("codebuild_stopped", ledger_for("codebuild_succeeded"))
    assert (message.status, message.severity) == ("STOPPED", "WARNING")
    assert "failures" in message.kinds


def test_a_failed_build_names_the_failed_phase_and_links_the_logs() -> None:
    message = message_for("codebuild_failed")
    assert message.status == "FAILED"
    assert message.note.startswith("BUILD phase FAILED: COMMAND_EXECUTION_ERROR")
    assert message.links[0].label == "CodeBuild logs"
    assert message.links[0].url.startswith("https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:")


def test_a_codebuild_event_names_repository_branch_and_commit_from_the_build_environment() -> None:
    message = message_for("codebuild_succeeded", MemoryLedger())
    assert (message.repository, message.ref_type, message.ref, message.commit) == ("demo-app", "branch", "main", COMMIT)
    assert message.ecr_repository == "demo-app"
    assert message.author == ""  # the ledger knows no push here, and the message says nothing rather than guess


def test_a_codebuild_event_takes_author_and_first_line_of_the_message_from_the_ledger() -> None:
    message = message_for("codebuild_succeeded")
    assert (message.author, message.commit_message) == ("Ada Lovelace", "Add login page")


def test_a_codebuild_event_without_overrides_falls_back_on_the_ledger_record() -> None:
    event = load_event("codebuild_failed")
    event["detail"]["additional-information"]["environment"]["environment-variables"] = []
    ledger = ledger_for("codebuild_failed")
    ledger.builds[BUILD_ID] = ledger.builds[BUILD_ID]._replace(ref_name="feature/login")
    message = to_message(parse_notification(event), pipeline_config(), ledger)
    assert message is not None
    assert (message.repository, message.ref, message.commit) == ("demo-app", "feature/login", COMMIT)


def test_the_build_id_is_the_one_start_build_records_not_the_arn() -> None:
    change = parse_notification(load_event("codebuild_succeeded"))
    assert isinstance(change, BuildStateChange)
    assert change.build_id == BUILD_ID


def test_a_secret_build_variable_is_never_read_into_the_message() -> None:
    event = load_event("codebuild_succeeded")
    variables = event["detail"]["additional-information"]["environment"]["environment-variables"]
    variables.append({"name": "TOKEN", "type": "SECRETS_MANAGER", "value": "arn:aws:secretsmanager:token"})
    change = parse_notification(event)
    assert isinstance(change, BuildStateChange)
    assert "TOKEN" not in change.environment


def test_a_blocked_verdict_belongs_to_verdict_and_blocked() -> None:
    message = message_for("notify_scan_verdict_blocked")
    assert (message.status, message.severity, message.kinds) == ("BLOCKED", "ERROR", ("verdict", "blocked"))
    assert message.counts == (("CRITICAL", 1), ("HIGH", 2), ("MEDIUM", 4))
    assert [finding.id for finding in message.findings] == ["CVE-2024-45337", "CVE-2024-5535", "CVE-2023-50387"]


def test_a_passed_verdict_is_not_blocked() -> None:
    assert message_for("notify_scan_verdict_passed").kinds == ("verdict",)


def test_an_unknown_verdict_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match=r"detail\.verdict"):
        message_for("notify_scan_verdict_passed", verdict="MAYBE")


def test_the_composer_makes_a_message_from_an_envelope_alone() -> None:
    event = load_event("build_started")
    event["detail"] = {}
    message = message_from_pipeline_event(parse_envelope(event))
    assert (message.headline, message.repository, message.commit, message.links) == ("Build started", "", "", ())


def test_the_composer_renders_what_is_usable_of_wrongly_typed_optional_fields() -> None:
    event = load_event("notify_scan_verdict_blocked", counts=["CRITICAL"], top_findings="none", tags=None, author=7)
    message = message_from_pipeline_event(parse_envelope(event))
    assert (message.counts, message.findings, message.image_tags, message.author) == ((), (), (), "7")


def test_a_pipeline_event_without_its_detail_is_rejected_naming_the_field() -> None:
    event = load_event("build_started")
    event["detail"] = {}
    with pytest.raises(MalformedEvent) as rejected:
        parse_notification(event)
    assert rejected.value.field.startswith("detail.")


@pytest.mark.parametrize("verdict", [None, "", "MAYBE", 7])
def test_a_scan_verdict_without_a_valid_verdict_is_rejected_when_parsed(verdict: object) -> None:
    with pytest.raises(MalformedEvent) as rejected:
        parse_notification(load_event("notify_scan_verdict_blocked", verdict=verdict))
    assert rejected.value.field == "detail.verdict"


def test_a_pipeline_event_with_wrongly_typed_counts_is_rejected_naming_the_field() -> None:
    with pytest.raises(MalformedEvent) as rejected:
        parse_notification(load_event("notify_scan_verdict_blocked", counts=["CRITICAL"]))
    assert rejected.value.field == "detail.counts"


def test_an_image_promoted_event_lists_the_added_tags() -> None:
    message = message_for("notify_image_promoted")
    assert message.image_tags == ("main", "main-a3b2c1d", "latest")
    assert message.kinds == ("promoted",)


def test_a_codedeploy_failure_is_told_for_the_configured_environment() -> None:
    message = message_for("codedeploy_failure")
    assert (message.status, message.environment, message.repository) == ("FAILED", "dev", "demo-app")
    assert message.kinds == ("deployment", "failures")
    assert message.links[0].url.endswith("/codedeploy/deployments/d-7XQ2ABCDE?region=us-east-1")


def test_a_codedeploy_event_names_the_push_the_environment_record_says_it_deployed() -> None:
    message = message_for("codedeploy_success")
    assert (message.ref, message.commit, message.author) == ("main", COMMIT, "Ada Lovelace")
    assert message.image == f"demo-app@{DIGEST}"
    assert [link.label for link in message.links] == ["CodeDeploy deployment", "ECR image", "Commit"]


def test_a_codedeploy_event_names_no_push_once_the_environment_record_moved_to_another_deployment() -> None:
    ledger = ledger_for("codedeploy_success")
    dev = ledger.environments[("demo-app", "dev")]
    ledger.environments[("demo-app", "dev")] = dev._replace(deployment_id="d-NEWER0001")
    message = message_for("codedeploy_success", ledger)
    assert (message.environment, message.commit, message.image) == ("dev", "", "")


def test_a_codedeploy_event_for_a_group_not_in_pipeline_yaml_makes_no_message() -> None:
    event = load_event("codedeploy_success", deploymentGroup="someone-elses-group")
    assert to_message(parse_notification(event), pipeline_config(), MemoryLedger()) is None


def test_an_in_progress_build_is_not_a_build_notify_tells() -> None:
    with pytest.raises(MalformedEvent, match=r"detail\.build-status"):
        parse_notification(load_event("codebuild_succeeded", **{"build-status": "IN_PROGRESS"}))


def test_a_detail_type_notify_does_not_tell_is_malformed() -> None:
    event = load_event("build_started")
    event["detail-type"] = "Image Registered"
    with pytest.raises(MalformedEvent, match="detail-type"):
        parse_notification(event)


def test_a_codedeploy_event_without_a_deployment_id_names_the_field() -> None:
    event = load_event("codedeploy_success")
    del event["detail"]["deploymentId"]
    with pytest.raises(MalformedEvent, match=r"detail\.deploymentId is missing"):
        parse_notification(event)


@pytest.mark.parametrize("event_name", ["scan_verdict_passed", "scan_verdict_blocked", "image_promoted"])
def test_the_image_flow_sample_events_make_complete_messages(event_name: str) -> None:
    message = message_for(event_name)
    assert (message.repository, message.ref, message.commit) == ("demo-app", "main", COMMIT)
    assert message.image.startswith("demo-app@sha256:")
    assert message.author and message.commit_message


def test_a_promotion_names_the_tags_it_could_not_move() -> None:
    message = message_for("notify_image_promoted", superseded_tags=["latest"], failed_tags=["main"])
    assert ("Held by a newer push", "latest") in message.facts
    assert ("Refused", "main") in message.facts


@pytest.mark.parametrize(("status", "headline"), [("TIMED_OUT", "Build timed out"), ("FAULT", "Build failed")])
def test_a_build_that_timed_out_or_faulted_is_a_failure(status: str, headline: str) -> None:
    message = message_for("codebuild_failed", **{"build-status": status})
    assert (message.headline, message.status, message.kinds) == (headline, "FAILED", ("build", "failures"))


def test_a_pipeline_detail_field_of_the_wrong_type_reads_as_unknown() -> None:
    from ecr_pipeline.notify.readers import read_pipeline_detail

    read = read_pipeline_detail({"repository": ["demo-app"], "counts": "many", "top_findings": [{"id": 7}, "x"]})
    assert (read.repository, read.counts, read.top_findings) == ("", (), (Finding("7"),))
