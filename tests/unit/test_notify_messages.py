"""The one message model, built from the pipeline's own events and CodeBuild's."""

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
)

ECS_DEPLOYMENT_ID = load_event("deployment_rolled_back")["detail"]["deployment_id"]


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
    message = to_message(parse_notification(event), ledger)
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


def test_a_failed_deployment_names_its_reason_and_what_serves_now() -> None:
    message = message_for("deployment_failed")
    assert (message.headline, message.severity) == ("Deployment failed", "ERROR")
    assert message.kinds == ("deployment", "failures")
    assert message.note == "Reason: HEALTH_CONSTRAINTS: the new tasks failed their load balancer health checks"
    assert ("Serving now", "9f8e7d6c5b4a") in message.facts
    assert ("CodeDeploy", "demo-app / demo-app-dev") in message.facts


def test_a_failed_first_deployment_says_what_ran_before_serves_now() -> None:
    message = message_for("deployment_failed", serving_commit=None, serving_image_digest=None)
    assert ("Serving now", "what ran before the pipeline's first deployment") in message.facts
    assert "Image serving now" not in [link.label for link in message.links]


def test_a_rolled_back_deployment_is_an_error_routed_to_failures() -> None:
    message = message_for("deployment_rolled_back")
    assert (message.status, message.headline, message.severity) == ("ROLLED_BACK", "Deployment rolled back", "ERROR")
    assert message.kinds == ("deployment", "failures")
    assert message.note == "Reason: alarm demo-app-dev-target-5xx in ALARM; ECS deployment rolled back"


def test_an_ecs_deployment_names_the_ecs_service_and_links_the_ecs_console() -> None:
    message = message_for("deployment_rolled_back")
    assert ("ECS service", "demo-cluster / demo-app-dev") in message.facts
    assert not any(label == "CodeDeploy" for label, _ in message.facts)
    links = {link.label: link.url for link in message.links}
    assert "CodeDeploy deployment" not in links
    assert links["ECS deployment"] == (
        "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/demo-cluster/services/demo-app-dev/deployments"
        "?region=us-east-1"
    )


def test_an_ecs_deployment_start_names_the_ecs_service_and_links_the_ecs_console() -> None:
    ecs = {"strategy": "ecs", "application": "", "deployment_group": "", "deployment_id": ECS_DEPLOYMENT_ID}
    message = message_for("deployment_started", **ecs)
    assert ("ECS service", "demo-cluster / demo-app-dev") in message.facts
    assert [link.label for link in message.links] == ["ECR image", "ECS deployment", "Commit"]


def test_a_codedeploy_deployment_start_names_the_group_and_links_codedeploy() -> None:
    message = message_for("deployment_started")
    assert ("CodeDeploy", "demo-app / demo-app-dev") in message.facts
    assert [link.label for link in message.links] == ["ECR image", "CodeDeploy deployment", "Commit"]


def test_a_succeeded_deployment_is_told_for_its_environment_and_links_codedeploy() -> None:
    message = message_for("deployment_succeeded")
    assert (message.status, message.severity, message.kinds) == ("SUCCEEDED", "INFO", ("deployment",))
    assert (message.environment, message.commit, message.author) == ("dev", COMMIT, "Ada Lovelace")
    assert message.image == f"demo-app@{DIGEST}"
    assert message.links[1].url.endswith("/codedeploy/deployments/d-7XQ2ABCDE?region=us-east-1")


def test_the_ecs_link_quotes_the_cluster_and_service_names() -> None:
    message = message_for("deployment_rolled_back", cluster="a/b?c", service="d#e")
    [url] = [link.url for link in message.links if link.label == "ECS deployment"]
    assert "/clusters/a%2Fb%3Fc/services/d%23e/deployments?" in url


def test_a_codedeploy_state_change_is_not_an_event_notify_tells() -> None:
    with pytest.raises(MalformedEvent) as rejected:
        parse_notification(load_event("codedeploy_failure"))
    assert rejected.value.field == "detail-type"


def test_a_deployment_end_without_a_deployment_id_names_the_field() -> None:
    event = load_event("deployment_failed")
    del event["detail"]["deployment_id"]
    with pytest.raises(MalformedEvent, match=r"detail\.deployment_id"):
        parse_notification(event)


def test_an_in_progress_build_is_not_a_build_notify_tells() -> None:
    with pytest.raises(MalformedEvent, match=r"detail\.build-status"):
        parse_notification(load_event("codebuild_succeeded", **{"build-status": "IN_PROGRESS"}))


def test_a_detail_type_notify_does_not_tell_is_malformed() -> None:
    event = load_event("build_started")
    event["detail-type"] = "Image Registered"
    with pytest.raises(MalformedEvent, match="detail-type"):
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
