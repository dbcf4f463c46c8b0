"""tag_image against moto: registering build pushes, ignoring the rest, and promoting PASSED images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from ecr_pipeline.adapters.ecr import SCAN_SETTING_TTL_SECONDS
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.naming import build_tag
from tests.events import load_event
from tests.handlers import create_pipeline_tables
from tests.integration.image_flow_world import (
    BUILD_TAG,
    COMMIT,
    REPOSITORY_URI,
    load_function,
    make_repository,
    put_build_image,
    record_push,
    register_image,
    tags_of,
    write_config,
)

# The push of the git tag v1.2.3 that events/promotion_requested.json is about.
TAG_PUSH_ID = "e3f4a5b6-c7d8-4e9f-0a1b-2c3d4e5f6a7b#tag#v1.2.3"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_pipeline_tables()
        yield


def push_event(digest: str, tag: str | None = BUILD_TAG) -> dict:  # type: ignore[type-arg]
    event = load_event("ecr_push_build_tag", **{"image-digest": digest})
    if tag is None:
        del event["detail"]["image-tag"]
    else:
        event["detail"]["image-tag"] = tag
    return event


def verdict_event(digest: str, verdict: str = "PASSED", commit: str = COMMIT, backed: bool = True) -> dict:  # type: ignore[type-arg]
    """A "Scan Verdict"; `backed`: scan_check recorded that verdict in the ledger, as it does before telling."""
    name = "scan_verdict_passed" if verdict == "PASSED" else "scan_verdict_blocked"
    event = load_event(name, image_digest=digest, commit=commit, image_tag=build_tag(commit))
    event["id"] = f"verdict-{digest[-6:]}-{verdict}"
    if backed:
        register_image(digest, commit, verdict, tuple(event["detail"]["reasons"]))
    return event


# --- registering ------------------------------------------------------------------------------


def test_build_push_registers_the_image_against_its_commit(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(push_event(digest))

    assert result["status"] == "registered"
    image = Ledger("ledger").get_image("demo-app", digest)
    assert image is not None
    assert (image.commit, image.codecommit_repository, image.pushed_at) == (
        COMMIT,
        "demo-app",
        "2026-11-28T10:09:30.000000Z",
    )
    (registered,) = tag_image.details("Image Registered")
    assert registered["image_digest"] == digest and registered["repository_uri"] == REPOSITORY_URI
    assert registered["ref"] == "main" and registered["pushes"][0]["ref"] == "main"


@pytest.mark.parametrize("event_name", ["ecr_push_retag", "ecr_push_no_tag", "ecr_delete"])
def test_pushes_that_are_not_build_tags_and_deletes_are_ignored_without_aws_calls(
    aws: None, monkeypatch: pytest.MonkeyPatch, event_name: str
) -> None:
    make_repository()
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(load_event(event_name))

    assert result["status"] == "ignored" and result["reason"]
    assert tag_image.published == [] and sum(tag_image.calls.values()) == 0


def test_repository_without_scan_on_push_gets_a_scan_started(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(scan_on_push=False)
    digest = put_build_image()
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(push_event(digest))

    assert result["scan"] == "scan started"
    assert tag_image.calls["ecr:StartImageScan"] == 1


def test_repository_with_scan_on_push_starts_no_scan(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(scan_on_push=True)
    digest = put_build_image()
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(push_event(digest))

    assert result["scan"] == "scan on push" and tag_image.calls["ecr:StartImageScan"] == 0


def test_the_scan_on_push_setting_is_asked_once_per_repository_until_it_may_have_changed(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a warm tag_image whose clock the test moves
    make_repository(scan_on_push=True)
    digests = [put_build_image(commit) for commit in ("1" * 40, "2" * 40, "3" * 40)]
    tag_image = load_function("tag_image", monkeypatch)
    now = [1000.0]
    tag_image.app.services.ecr._clock = lambda: now[0]

    # When ops turn scan-on-push off between two pushes a minute apart, and a third comes later
    first = tag_image.invoke(push_event(digests[0], build_tag("1" * 40)))
    boto3.client("ecr").put_image_scanning_configuration(
        repositoryName="demo-app", imageScanningConfiguration={"scanOnPush": False}
    )
    now[0] += 60
    second = tag_image.invoke(push_event(digests[1], build_tag("2" * 40)))
    now[0] += SCAN_SETTING_TTL_SECONDS
    third = tag_image.invoke(push_event(digests[2], build_tag("3" * 40)))

    # Then the second reuses the answer, and the third asks again and starts its scan
    assert [result["scan"] for result in (first, second, third)] == ["scan on push", "scan on push", "scan started"]
    assert tag_image.calls["ecr:DescribeRepositories"] == 2


def test_daily_scan_limit_is_an_expected_outcome_not_a_crash(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(scan_on_push=False)
    digest = put_build_image()
    boto3.client("ecr").start_image_scan(repositoryName="demo-app", imageId={"imageDigest": digest})
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(push_event(digest))

    assert result["status"] == "registered" and result["scan"] == "scan limit reached for today"


def test_gate_disabled_repository_gets_a_passed_verdict_saying_so_at_registration(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_repository(scan_on_push=False)
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch, write_config(tmp_path, {"scan": {"gate": False}}))

    result = tag_image.invoke(push_event(digest))

    (verdict,) = tag_image.details("Scan Verdict")
    assert verdict["verdict"] == "PASSED" and verdict["scanning"] == "disabled"
    assert verdict["reasons"] == ["scan gate disabled by configuration"]
    assert verdict["image_digest"] == digest and verdict["commit"] == COMMIT
    assert tag_image.calls["ecr:StartImageScan"] == 0 and "not needed" in result["scan"]


def test_redelivered_build_push_registers_once(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    tag_image = load_function("tag_image", monkeypatch)
    event = push_event(digest)

    tag_image.invoke(event)
    second = dict(event, id="another-delivery-of-the-same-push")
    tag_image.invoke(second)

    assert tag_image.detail_types() == ["Image Registered"]


# --- promoting ---------------------------------------------------------------------------------


def test_passed_verdict_adds_branch_sha_and_latest_tags_to_the_same_digest(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(verdict_event(digest))

    assert result["status"] == "promoted"
    assert tags_of(digest) == {BUILD_TAG, "main", "main-a3b2c1d", "latest"}
    (promoted,) = tag_image.details("Image Promoted")
    assert promoted["tags"] == ["main", "main-a3b2c1d", "latest"]
    assert [push["ref"] for push in promoted["pushes"]] == ["main"]
    assert promoted["image_digest"] == digest


def test_blocked_verdict_adds_no_tag_so_latest_never_points_at_it(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(verdict_event(digest, "BLOCKED"))

    assert result["status"] == "blocked"
    assert tags_of(digest) == {BUILD_TAG}
    assert tag_image.details("Image Promoted") == []
    image = Ledger("ledger").get_image("demo-app", digest)
    assert image is not None and image.verdict == "BLOCKED"


def test_passed_verdict_promotes_every_ref_recorded_for_the_commit(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    record_push("tag", "v1.2.3", time="2026-11-28T10:06:00.000000Z")
    tag_image = load_function("tag_image", monkeypatch)

    tag_image.invoke(verdict_event(digest))

    assert tags_of(digest) == {BUILD_TAG, "main", "main-a3b2c1d", "latest", "1.2.3", "1.2", "1"}


def test_git_tag_on_an_image_that_already_passed_is_promoted_without_a_build(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    register_image(digest, verdict="PASSED", reasons=("within the policy",))
    record_push("tag", "v1.2.3", time="2026-11-28T12:00:00.000000Z", push_id=TAG_PUSH_ID)
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(load_event("promotion_requested", image_digest=digest))

    assert result["status"] == "promoted"
    assert tags_of(digest) == {BUILD_TAG, "1.2.3", "1.2", "1"}
    (promoted,) = tag_image.details("Image Promoted")
    assert promoted["pushes"][0]["ref"] == "v1.2.3" and promoted["verdict_reasons"] == ["within the policy"]


def test_promotion_request_before_the_verdict_waits_and_the_verdict_promotes_it(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    record_push("tag", "v1.2.3", time="2026-11-28T12:00:00.000000Z", push_id=TAG_PUSH_ID)
    tag_image = load_function("tag_image", monkeypatch)

    waiting = tag_image.invoke(load_event("promotion_requested", image_digest=digest))
    tag_image.invoke(verdict_event(digest))

    assert waiting["status"] == "waiting"
    assert {"1.2.3", "1.2", "1"} <= tags_of(digest)


def test_promotion_request_for_a_blocked_image_adds_no_tag(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    Ledger("ledger").record_verdict("demo-app", digest, "BLOCKED", ["1 CRITICAL"], "basic")
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(load_event("promotion_requested", image_digest=digest))

    assert result == {"status": "waiting", "effect": "ignored", "reason": "verdict BLOCKED"}
    assert tags_of(digest) == {BUILD_TAG}


def test_tag_already_on_that_digest_counts_as_success(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    push = record_push()
    tag_image = load_function("tag_image", monkeypatch)
    tag_image.invoke(verdict_event(digest))

    # The same ref asked again (start_build's "Promotion Requested"): ECR answers ImageAlreadyExists.
    request = load_event(
        "promotion_requested",
        image_digest=digest,
        ref_type="branch",
        ref="main",
        push_id=push.push_id,
        push_time=push.push_time,
    )
    result = tag_image.invoke(request)

    assert result["already"] == ["main", "main-a3b2c1d", "latest"]
    assert result["added"] == [] and result["failed"] == []
    assert tag_image.details("Promotion Failed") == []


def two_pushes_of_main(older_commit: str, newer_commit: str) -> tuple[str, str]:
    """Built images of two pushes to main a minute apart; their digests, older first."""
    older = put_build_image(older_commit)
    newer = put_build_image(newer_commit)
    record_push(commit=older_commit, time="2026-11-28T10:00:00.000000Z")
    record_push(commit=newer_commit, time="2026-11-28T10:01:00.000000Z")
    return older, newer


def test_newer_push_keeps_its_moving_tags_against_a_late_verdict_of_an_older_push(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    older_commit, newer_commit = "1" * 40, "2" * 40
    older, newer = two_pushes_of_main(older_commit, newer_commit)
    tag_image = load_function("tag_image", monkeypatch)

    tag_image.invoke(verdict_event(newer, commit=newer_commit))
    late = tag_image.invoke(verdict_event(older, commit=older_commit))

    assert {"main", "latest"} <= tags_of(newer)
    assert not {"main", "latest"} & tags_of(older)
    assert late["superseded"] == ["main", "latest"] and late["added"] == ["main-1111111"]


def test_immutable_tag_held_by_another_image_is_a_reported_failure_not_a_retry(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    record_push("tag", "v1.2.3", time="2026-11-28T12:00:00.000000Z", push_id=TAG_PUSH_ID)
    tag_image = load_function("tag_image", monkeypatch)
    stubber = Stubber(tag_image.app.services.ecr._client)
    manifest = '{"schemaVersion": 2}'
    stubber.add_response(
        "batch_get_image",
        {
            "images": [
                {"imageManifest": manifest, "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"}
            ]
        },
    )
    stubber.add_response("put_image", {"image": {"imageId": {"imageDigest": digest, "imageTag": "1.2.3"}}})
    stubber.add_response("put_image", {"image": {"imageId": {"imageDigest": digest, "imageTag": "1.2"}}})
    stubber.add_client_error(
        "put_image",
        service_error_code="ImageTagAlreadyExistsException",
        service_message="The image tag '1' already exists in the 'demo-app' repository and cannot be overwritten",
        expected_params={
            "repositoryName": "demo-app",
            "imageManifest": manifest,
            "imageTag": "1",
            "imageDigest": ANY,
            "imageManifestMediaType": ANY,
        },
    )
    stubber.add_response("describe_images", {"imageDetails": [{"imageDigest": "sha256:" + "9" * 64}]})

    with stubber:
        result = tag_image.invoke(verdict_event(digest))

    assert result["failed"] == ["1"] and result["added"] == ["1.2.3", "1.2"]
    (failed,) = tag_image.details("Promotion Failed")
    assert failed["tag"] == "1" and failed["holder_digest"] == "sha256:" + "9" * 64
    assert "cannot be overwritten" in failed["reason"]
    assert tag_image.details("Image Promoted")[0]["failed_tags"] == ["1"]
    assert tag_image.calls["events:PutEvents"] == 1  # both events of the verdict in one call


def test_immutable_repository_reports_the_conflict_from_moto(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository(mutability="IMMUTABLE")
    older_commit, newer_commit = "1" * 40, "2" * 40
    older, newer = two_pushes_of_main(older_commit, newer_commit)
    tag_image = load_function("tag_image", monkeypatch)

    tag_image.invoke(verdict_event(older, commit=older_commit))
    result = tag_image.invoke(verdict_event(newer, commit=newer_commit))

    assert "main" in result["failed"] and "main" in tags_of(older)
    assert [d["tag"] for d in tag_image.details("Promotion Failed")] == ["main", "latest"]


def test_default_mutability_moves_major_version_and_one_word_branch_to_the_newer_image(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the template's repository: MUTABLE_WITH_EXCLUSION, with build tags the one immutable kind
    make_repository(mutability="MUTABLE_WITH_EXCLUSION")
    older_commit, newer_commit = "1" * 40, "2" * 40
    older, newer = put_build_image(older_commit), put_build_image(newer_commit)
    record_push("tag", "v1.0.0", commit=older_commit, time="2026-11-28T10:00:00.000000Z")
    record_push("branch", "develop", commit=older_commit, time="2026-11-28T10:00:01.000000Z")
    record_push("tag", "v1.1.0", commit=newer_commit, time="2026-11-28T10:01:00.000000Z")
    record_push("branch", "develop", commit=newer_commit, time="2026-11-28T10:01:01.000000Z")
    tag_image = load_function("tag_image", monkeypatch)

    # When both images pass, the older first
    tag_image.invoke(verdict_event(older, commit=older_commit))
    result = tag_image.invoke(verdict_event(newer, commit=newer_commit))

    # Then `1` and `develop` moved to the newer image, and nothing failed
    assert result["failed"] == [] and tag_image.details("Promotion Failed") == []
    assert {"1", "1.1", "1.1.0", "develop", build_tag(newer_commit)} <= tags_of(newer)
    assert tags_of(older) == {build_tag(older_commit), "1.0.0", "1.0", "develop-1111111"}


def test_default_mutability_keeps_a_build_tag_on_its_image(aws: None) -> None:
    make_repository(mutability="MUTABLE_WITH_EXCLUSION")
    digest = put_build_image()
    other = put_build_image("2" * 40)
    ecr = boto3.client("ecr")
    manifest = ecr.batch_get_image(repositoryName="demo-app", imageIds=[{"imageDigest": other}])["images"][0]

    with pytest.raises(ecr.exceptions.ClientError) as refused:
        ecr.put_image(repositoryName="demo-app", imageManifest=manifest["imageManifest"], imageTag=BUILD_TAG)

    # ECR says ImageTagAlreadyExistsException; moto 5.2.5 says ImageAlreadyExistsException.
    assert refused.value.response["Error"]["Code"] in ("ImageTagAlreadyExistsException", "ImageAlreadyExistsException")
    assert BUILD_TAG in tags_of(digest) and BUILD_TAG not in tags_of(other)


def test_same_verdict_for_the_same_digest_promotes_once(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    tag_image = load_function("tag_image", monkeypatch)

    tag_image.invoke(verdict_event(digest))
    second = verdict_event(digest)
    second["id"] = "a-second-verdict-event-for-the-same-digest"
    tag_image.invoke(second)

    assert tag_image.detail_types() == ["Image Promoted"]
    assert tag_image.calls["ecr:PutImage"] == 3


# --- trust: the ledger, not the event, decides ----------------------------------------------------


def tag_claims() -> list[str]:
    items = boto3.client("dynamodb").scan(TableName="ledger")["Items"]
    return [item["tag"]["S"] for item in items if item.get("kind", {}).get("S") == "promotion_tag"]


def test_a_forged_passed_verdict_for_a_blocked_image_moves_nothing(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    register_image(digest, verdict="BLOCKED", reasons=("1 CRITICAL over the limit 0",))
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(verdict_event(digest, "PASSED", backed=False))

    assert (result["status"], result["field"]) == ("rejected", "detail.verdict")
    assert "ledger holds BLOCKED" in result["reason"]
    assert tags_of(digest) == {BUILD_TAG} and tag_claims() == [] and tag_image.published == []
    image = Ledger("ledger").get_image("demo-app", digest)
    assert image is not None and image.verdict == "BLOCKED"


def test_a_verdict_the_ledger_never_recorded_is_rejected(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    register_image(digest, verdict=None)
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(verdict_event(digest, "PASSED", backed=False))

    assert (result["status"], result["field"]) == ("rejected", "detail.verdict")
    assert tags_of(digest) == {BUILD_TAG} and tag_claims() == []


def test_a_promotion_request_for_a_push_the_ledger_never_recorded_is_rejected(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    register_image(digest, verdict="PASSED")
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(load_event("promotion_requested", image_digest=digest))

    assert (result["status"], result["field"]) == ("rejected", "detail.push_id")
    assert tags_of(digest) == {BUILD_TAG} and tag_claims() == []


def test_an_image_deleted_before_its_promotion_leaves_no_claim_and_is_not_retried(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    event = verdict_event(digest)
    boto3.client("ecr").batch_delete_image(repositoryName="demo-app", imageIds=[{"imageDigest": digest}])
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke(event)

    assert (result["status"], result["effect"]) == ("image deleted", "ignored")
    assert tag_claims() == [] and tag_image.published == []


def test_an_image_push_of_another_region_is_rejected_naming_the_region(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    tag_image = load_function("tag_image", monkeypatch)

    result = tag_image.invoke({**push_event(digest), "region": "eu-west-1"})

    assert (result["status"], result["field"]) == ("rejected", "region")
    assert Ledger("ledger").get_image("demo-app", digest) is None


def test_a_registration_after_its_scan_tells_the_verdict_the_scan_kept(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repository()
    digest = put_build_image()
    record_push()
    Ledger("ledger").record_verdict("demo-app", digest, "BLOCKED", ["1 CRITICAL over the limit 0"], "basic")
    tag_image = load_function("tag_image", monkeypatch)

    tag_image.invoke(push_event(digest))
    (told,) = tag_image.as_events("Scan Verdict")
    result = tag_image.invoke(told)

    assert told["detail"]["verdict"] == "BLOCKED" and told["detail"]["reasons"] == ["1 CRITICAL over the limit 0"]
    assert result["status"] == "blocked" and tags_of(digest) == {BUILD_TAG}
