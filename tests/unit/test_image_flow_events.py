"""Parsing the ECR, scan and pipeline events of the image flow (events/ecr.py, scan.py, pipeline.py)."""

from __future__ import annotations

import pytest

from ecr_pipeline.core.naming import build_tag
from ecr_pipeline.events.ecr import parse_image_action
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.events.pipeline import ImagePromoted, PromotionRequested, ScanVerdict, parse_pipeline_event
from ecr_pipeline.events.scan import parse_scan_event
from tests.events import load_event

COMMIT = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"


def test_build_push_is_parsed_with_its_tag_and_digest() -> None:
    action = parse_image_action(load_event("ecr_push_build_tag"))

    assert (action.action_type, action.result, action.image_tag) == ("PUSH", "SUCCESS", build_tag(COMMIT))
    assert action.ecr_repository == "demo-app" and action.image_digest.startswith("sha256:")


def test_push_without_image_tag_has_no_tag() -> None:
    assert parse_image_action(load_event("ecr_push_no_tag")).image_tag is None


def test_image_action_without_digest_names_the_field() -> None:
    event = load_event("ecr_push_build_tag")
    del event["detail"]["image-digest"]

    with pytest.raises(MalformedEvent) as raised:
        parse_image_action(event)

    assert raised.value.field == "detail.image-digest"


def test_basic_scan_event_keeps_only_the_severities_it_names() -> None:
    scan = parse_scan_event(load_event("ecr_scan_complete_findings"))

    assert scan.scanning == "basic"
    assert scan.severity_counts == {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 9}
    assert scan.image_tags == (build_tag(COMMIT),)


def test_enhanced_scan_event_gives_the_repository_name_from_its_arn_and_drops_total() -> None:
    scan = parse_scan_event(load_event("inspector2_scan_initial"))

    assert scan.scanning == "enhanced"
    assert scan.ecr_repository == "demo-app"
    assert "TOTAL" not in scan.severity_counts and scan.severity_counts["HIGH"] == 1


def test_failed_scan_event_has_no_counts() -> None:
    scan = parse_scan_event(load_event("ecr_scan_failed"))

    assert (scan.scan_status, scan.severity_counts) == ("FAILED", {})


def test_scan_event_with_a_negative_count_names_the_severity() -> None:
    event = load_event("ecr_scan_complete_findings", **{"finding-severity-counts": {"HIGH": -1}})

    with pytest.raises(MalformedEvent) as raised:
        parse_scan_event(event)

    assert raised.value.field == "detail.finding-severity-counts.HIGH"


def test_scan_event_with_a_repository_arn_of_another_kind_is_rejected() -> None:
    event = load_event("inspector2_scan_initial", **{"repository-name": "arn:aws:s3:::bucket"})

    with pytest.raises(MalformedEvent):
        parse_scan_event(event)


def test_verdict_event_is_parsed() -> None:
    verdict = parse_pipeline_event(load_event("scan_verdict_blocked"), ScanVerdict).record

    assert verdict.verdict.verdict == "BLOCKED" and verdict.subject.commit == COMMIT
    assert verdict.verdict.reasons[0].startswith("1 CRITICAL")


def test_verdict_other_than_passed_or_blocked_is_rejected() -> None:
    with pytest.raises(MalformedEvent) as raised:
        parse_pipeline_event(load_event("scan_verdict_passed", verdict="MAYBE"), ScanVerdict)

    assert raised.value.field == "detail.verdict"


def test_promotion_request_carries_the_push_of_the_git_tag() -> None:
    push = parse_pipeline_event(load_event("promotion_requested"), PromotionRequested).record.subject.push

    assert push is not None
    assert (push.ref_type, push.ref_name) == ("tag", "v1.2.3")
    assert push.push_time == "2026-11-28T12:00:00.000000Z"


def test_promoted_event_lists_its_pushes() -> None:
    promoted = parse_pipeline_event(load_event("image_promoted"), ImagePromoted).record

    assert [push.ref_name for push in promoted.pushes] == ["main"]
    assert promoted.tags == ("main", "main-a3b2c1d", "latest")


def test_promoted_event_with_a_bad_push_names_it() -> None:
    event = load_event("image_promoted")
    del event["detail"]["pushes"][0]["push_time"]

    with pytest.raises(MalformedEvent) as raised:
        parse_pipeline_event(event, ImagePromoted)

    assert raised.value.field == "detail.pushes[0].push_time"
