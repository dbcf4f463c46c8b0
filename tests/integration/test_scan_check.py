"""scan_check against moto: basic and enhanced scan events to one "Scan Verdict".

Findings are set through moto's `/moto-api/static/ecr/scan-finding-results`; the paging of
describe_image_scan_findings goes through Stubber (moto returns one page).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws

from ecr_pipeline.adapters.ledger import Ledger
from tests.events import load_event
from tests.handlers import create_pipeline_tables
from tests.integration.image_flow_world import (
    COMMIT,
    Function,
    load_function,
    make_repository,
    put_build_image,
    record_push,
    register_image,
    write_config,
)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_pipeline_tables()
        make_repository(scan_on_push=False)
        record_push()
        yield


def scanned_image() -> str:
    digest = put_build_image()
    register_image(digest, verdict=None)  # tag_image registered the build push
    boto3.client("ecr").start_image_scan(repositoryName="demo-app", imageId={"imageDigest": digest})
    return digest


def set_findings(digest: str, status: str = "COMPLETE", findings: dict[str, Any] | None = None, **extra: Any) -> None:
    result: dict[str, Any] = {
        "registryId": "123456789012",
        "repositoryName": "demo-app",
        "imageId": {"imageDigest": digest},
        "imageScanStatus": {"status": status, "description": extra.pop("description", "")},
        **extra,
    }
    if findings is not None:
        result["imageScanFindings"] = findings
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/ecr/scan-finding-results",
        json={"results": [result], "region": "us-east-1"},
        timeout=5,
    )
    response.raise_for_status()


def basic_finding(cve: str, severity: str, package: str = "openssl") -> dict[str, Any]:
    return {
        "name": cve,
        "uri": f"https://security-tracker.debian.org/tracker/{cve}",
        "severity": severity,
        "attributes": [{"key": "package_name", "value": package}, {"key": "package_version", "value": "3.0.1"}],
    }


def scan_event(name: str, digest: str, **detail: Any) -> dict[str, Any]:
    return load_event(name, **{"image-digest": digest, **detail})


def only_verdict(scan_check: Function) -> dict[str, Any]:
    (verdict,) = scan_check.details("Scan Verdict")
    return verdict


def test_basic_scan_over_the_high_limit_is_blocked_with_its_top_findings(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = scanned_image()
    set_findings(
        digest,
        findings={
            "findings": [basic_finding("CVE-2026-1000", "HIGH"), basic_finding("CVE-2026-2000", "MEDIUM", "zlib")],
            "findingSeverityCounts": {"HIGH": 1, "MEDIUM": 1},
        },
    )
    scan_check = load_function("scan_check", monkeypatch)

    result = scan_check.invoke(
        scan_event("ecr_scan_complete_findings", digest, **{"finding-severity-counts": {"HIGH": 1, "MEDIUM": 1}})
    )

    assert result["verdict"] == "BLOCKED"
    verdict = only_verdict(scan_check)
    assert verdict["reasons"] == ["1 HIGH finding(s), at most 0 allowed"]
    assert verdict["top_findings"][0] == {
        "id": "CVE-2026-1000",
        "severity": "HIGH",
        "package": "openssl",
        "fixed_in": "",
        "url": "https://security-tracker.debian.org/tracker/CVE-2026-1000",
    }
    assert verdict["commit"] == COMMIT and verdict["ref"] == "main" and verdict["scanning"] == "basic"


def test_basic_scan_with_no_findings_passes(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    set_findings(digest, findings={"findings": [], "findingSeverityCounts": {}})
    scan_check = load_function("scan_check", monkeypatch)

    scan_check.invoke(scan_event("ecr_scan_complete_clean", digest))

    verdict = only_verdict(scan_check)
    assert verdict["verdict"] == "PASSED" and verdict["counts"] == {}


def test_failed_scan_is_blocked_without_reading_findings(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    scan_check = load_function("scan_check", monkeypatch)

    scan_check.invoke(scan_event("ecr_scan_failed", digest))

    verdict = only_verdict(scan_check)
    assert verdict["verdict"] == "BLOCKED" and verdict["reasons"] == ["scan status FAILED: no result to judge"]
    assert scan_check.calls["ecr:DescribeImageScanFindings"] == 0


def test_unsupported_image_is_blocked(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    set_findings(digest, status="UNSUPPORTED_IMAGE", description="The operating system is not supported")
    scan_check = load_function("scan_check", monkeypatch)

    scan_check.invoke(scan_event("ecr_scan_complete_clean", digest))

    verdict = only_verdict(scan_check)
    assert verdict["verdict"] == "BLOCKED"
    assert verdict["reasons"] == ["scan status UNSUPPORTED_IMAGE (The operating system is not supported)"]


def test_complete_scan_without_a_findings_result_is_blocked(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    set_findings(digest, status="COMPLETE")
    scan_check = load_function("scan_check", monkeypatch)

    scan_check.invoke(scan_event("ecr_scan_complete_clean", digest))

    assert only_verdict(scan_check)["reasons"] == ["no scan findings result for the image"]


def test_image_never_scanned_is_blocked(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = put_build_image()
    register_image(digest, verdict=None)
    scan_check = load_function("scan_check", monkeypatch)

    scan_check.invoke(scan_event("ecr_scan_complete_clean", digest))

    verdict = only_verdict(scan_check)
    assert verdict["verdict"] == "BLOCKED" and verdict["reasons"][0].startswith("scan status SCAN_NOT_FOUND")


def test_allowlisted_cve_lets_the_image_pass(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    set_findings(
        digest,
        findings={"findings": [basic_finding("CVE-2023-00000", "HIGH")], "findingSeverityCounts": {"HIGH": 1}},
    )
    scan_check = load_function("scan_check", monkeypatch)

    scan_check.invoke(scan_event("ecr_scan_complete_findings", digest, **{"finding-severity-counts": {"HIGH": 1}}))

    verdict = only_verdict(scan_check)
    assert verdict["verdict"] == "PASSED"
    assert verdict["raw_counts"] == {"HIGH": 1} and verdict["counts"] == {"HIGH": 0}
    assert verdict["allowlisted"][0]["id"] == "CVE-2023-00000"


def test_expired_allowlist_entry_blocks_again(aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    digest = scanned_image()
    set_findings(
        digest,
        findings={"findings": [basic_finding("CVE-2023-00000", "HIGH")], "findingSeverityCounts": {"HIGH": 1}},
    )
    expired = {"scan": {"allowlist": [{"cve": "CVE-2023-00000", "expires": "2025-01-31", "reason": "was unreachable"}]}}
    scan_check = load_function("scan_check", monkeypatch, write_config(tmp_path, expired))

    scan_check.invoke(scan_event("ecr_scan_complete_findings", digest, **{"finding-severity-counts": {"HIGH": 1}}))

    verdict = only_verdict(scan_check)
    assert verdict["verdict"] == "BLOCKED"
    assert "allowlist entry for CVE-2023-00000 expired on 2025-01-31: it counts again" in verdict["reasons"]


def test_enhanced_scan_with_an_arn_repository_reads_enhanced_findings(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    digest = scanned_image()
    set_findings(
        digest,
        status="ACTIVE",
        findings={
            "enhancedFindings": [
                {
                    "severity": "HIGH",
                    "title": "CVE-2026-3000 - zlib",
                    "packageVulnerabilityDetails": {
                        "vulnerabilityId": "CVE-2026-3000",
                        "sourceUrl": "https://nvd.nist.gov/vuln/detail/CVE-2026-3000",
                        "vulnerablePackages": [{"name": "zlib", "version": "1.2.11", "fixedInVersion": "1.2.12"}],
                    },
                }
            ],
            "findingSeverityCounts": {"HIGH": 1},
        },
    )
    scan_check = load_function("scan_check", monkeypatch, write_config(tmp_path, {"scan": {"scanning": "enhanced"}}))

    scan_check.invoke(scan_event("inspector2_scan_initial", digest))

    verdict = only_verdict(scan_check)
    assert verdict["scanning"] == "enhanced" and verdict["ecr_repository"] == "demo-app"
    assert verdict["verdict"] == "BLOCKED" and "TOTAL" not in verdict["raw_counts"]
    assert verdict["top_findings"][0]["fixed_in"] == "1.2.12"


def test_findings_on_every_page_are_read(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    scan_check = load_function("scan_check", monkeypatch)
    stubber = Stubber(scan_check.app.services.ecr._client)
    page = {"repositoryName": "demo-app", "imageId": {"imageDigest": digest}}
    stubber.add_response(
        "describe_image_scan_findings",
        {
            "imageScanStatus": {"status": "COMPLETE"},
            "imageScanFindings": {
                "findings": [basic_finding("CVE-2026-0001", "LOW")],
                "findingSeverityCounts": {"LOW": 1},
            },
            "nextToken": "page-2",
        },
        page,
    )
    stubber.add_response(
        "describe_image_scan_findings",
        {
            "imageScanStatus": {"status": "COMPLETE"},
            "imageScanFindings": {"findings": [basic_finding("CVE-2026-0002", "CRITICAL", "glibc")]},
        },
        {**page, "nextToken": "page-2"},
    )

    with stubber:
        scan_check.invoke(scan_event("ecr_scan_complete_clean", digest))

    verdict = only_verdict(scan_check)
    assert verdict["verdict"] == "BLOCKED" and verdict["top_findings"][0]["id"] == "CVE-2026-0002"
    assert verdict["raw_counts"] == {"CRITICAL": 1, "LOW": 1}


def test_gate_disabled_repository_gets_no_second_verdict_from_its_scan(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    digest = scanned_image()
    scan_check = load_function("scan_check", monkeypatch, write_config(tmp_path, {"scan": {"gate": False}}))

    result = scan_check.invoke(scan_event("ecr_scan_complete_findings", digest))

    assert result["status"] == "ignored" and "disabled by configuration" in result["reason"]
    assert scan_check.published == []


def test_same_scan_outcome_delivered_twice_gives_one_verdict(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    scan_check = load_function("scan_check", monkeypatch)
    event = scan_event("ecr_scan_failed", digest)

    scan_check.invoke(event)
    scan_check.invoke(dict(event, id="a-second-event-for-the-same-scan"))

    assert scan_check.detail_types() == ["Scan Verdict"]


def test_malformed_scan_event_is_dropped_not_retried(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    scan_check = load_function("scan_check", monkeypatch)
    event = load_event("ecr_scan_failed")
    del event["detail"]["image-digest"]

    result = scan_check.invoke(event)

    assert result["status"] == "rejected" and "detail.image-digest" in result["reason"]


def test_the_verdict_is_recorded_in_the_ledger_before_it_is_told(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = scanned_image()
    set_findings(digest, findings={"findings": [basic_finding("CVE-2026-1", "CRITICAL")]})
    scan_check = load_function("scan_check", monkeypatch)

    scan_check.invoke(scan_event("ecr_scan_complete_findings", digest))

    image = Ledger("ledger").get_image("demo-app", digest)
    assert image is not None and image.verdict == "BLOCKED" == only_verdict(scan_check)["verdict"]


def test_a_scan_of_an_image_the_pipeline_did_not_register_yields_no_verdict(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = put_build_image()  # pushed by hand under another tag: tag_image never registers it
    scan_check = load_function("scan_check", monkeypatch)

    result = scan_check.invoke(scan_event("ecr_scan_complete_clean", digest, **{"image-tags": ["hand-made"]}))

    assert (result["status"], result["effect"]) == ("ignored", "ignored")
    assert "not registered by the pipeline" in result["reason"]
    assert scan_check.published == [] and Ledger("ledger").get_image("demo-app", digest) is None


def test_a_scan_event_of_another_account_is_rejected_naming_the_account(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = scanned_image()
    scan_check = load_function("scan_check", monkeypatch)
    event = {**scan_event("ecr_scan_complete_clean", digest), "account": "999999999999"}

    result = scan_check.invoke(event)

    assert (result["status"], result["field"]) == ("rejected", "account")
    assert scan_check.published == []


def test_a_scan_that_overtakes_the_registration_of_a_build_keeps_its_verdict_for_it(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = put_build_image()  # the build's push event has not reached tag_image yet
    scan_check = load_function("scan_check", monkeypatch)

    result = scan_check.invoke(scan_event("ecr_scan_complete_clean", digest))

    assert (result["status"], result["verdict"]) == ("decided", "BLOCKED")  # no findings result: fail closed
    assert "kept on the image" in result["reason"] and scan_check.published == []
    image = Ledger("ledger").get_image("demo-app", digest)
    assert image is not None and image.verdict == "BLOCKED" and image.commit is None
