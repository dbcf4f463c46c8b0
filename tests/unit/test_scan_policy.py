"""The scan gate's verdict (core/scan_policy.py): limits per severity, the allowlist, failing closed."""

from __future__ import annotations

import datetime as dt

from ecr_pipeline.config import AllowlistEntry, ScanPolicy
from ecr_pipeline.core.scan_policy import (
    BLOCKED,
    GATE_DISABLED,
    PASSED,
    Finding,
    ScanReport,
    evaluate,
    finding_from_basic,
    finding_from_enhanced,
    gate_disabled_verdict,
)

TODAY = dt.date(2026, 11, 28)
POLICY = ScanPolicy(max_findings={"CRITICAL": 0, "HIGH": 0})


def report(counts: dict[str, int], findings: tuple[Finding, ...] = (), **overrides: object) -> ScanReport:
    values: dict[str, object] = {
        "scanning": "basic",
        "event_status": "COMPLETE",
        "event_counts": counts,
        "result_status": "COMPLETE",
        "has_result": True,
        "findings": findings,
    }
    values.update(overrides)
    return ScanReport(**values)  # type: ignore[arg-type]


def test_no_finding_above_a_limit_passes() -> None:
    verdict = evaluate(POLICY, report({"MEDIUM": 40, "LOW": 3}), TODAY)

    assert verdict.verdict == PASSED
    assert verdict.counts == {"MEDIUM": 40, "LOW": 3}


def test_a_high_finding_over_a_zero_limit_blocks_and_says_why() -> None:
    verdict = evaluate(POLICY, report({"HIGH": 2}), TODAY)

    assert verdict.verdict == BLOCKED
    assert verdict.reasons == ("2 HIGH finding(s), at most 0 allowed",)


def test_unnamed_severity_is_unlimited() -> None:
    assert evaluate(POLICY, report({"MEDIUM": 1000}), TODAY).passed


def test_allowlisted_cve_does_not_count_until_its_expiry() -> None:
    policy = ScanPolicy(
        max_findings={"HIGH": 0},
        allowlist=(AllowlistEntry("CVE-2026-1111", dt.date(2026, 12, 31), "not reachable"),),
    )
    finding = Finding("CVE-2026-1111", "HIGH", "openssl")

    verdict = evaluate(policy, report({"HIGH": 1}, (finding,)), TODAY)

    assert verdict.verdict == PASSED
    assert verdict.counts["HIGH"] == 0 and verdict.raw_counts["HIGH"] == 1
    assert verdict.allowlisted[0]["reason"] == "not reachable"


def test_expired_allowlist_entry_no_longer_allows() -> None:
    policy = ScanPolicy(
        max_findings={"HIGH": 0},
        allowlist=(AllowlistEntry("CVE-2026-1111", dt.date(2026, 11, 27), "was not reachable"),),
    )
    finding = Finding("CVE-2026-1111", "HIGH", "openssl")

    verdict = evaluate(policy, report({"HIGH": 1}, (finding,)), TODAY)

    assert verdict.verdict == BLOCKED
    assert any("expired on 2026-11-27" in reason for reason in verdict.reasons)


def test_allowlisted_cve_found_in_two_packages_is_let_off_twice() -> None:
    policy = ScanPolicy(
        max_findings={"HIGH": 0}, allowlist=(AllowlistEntry("CVE-2026-1111", dt.date(2027, 1, 1), "r"),)
    )
    findings = (Finding("CVE-2026-1111", "HIGH", "libssl"), Finding("CVE-2026-1111", "HIGH", "openssl"))

    assert evaluate(policy, report({"HIGH": 2}, findings), TODAY).passed


def test_failed_scan_is_blocked_never_passed() -> None:
    verdict = evaluate(POLICY, report({}, event_status="FAILED", has_result=False, result_status=None), TODAY)

    assert verdict.verdict == BLOCKED and "FAILED" in verdict.reasons[0]


def test_unsupported_image_is_blocked() -> None:
    verdict = evaluate(
        POLICY,
        report({}, result_status="UNSUPPORTED_IMAGE", result_description="The operating system is not supported"),
        TODAY,
    )

    assert verdict.verdict == BLOCKED
    assert verdict.reasons == ("scan status UNSUPPORTED_IMAGE (The operating system is not supported)",)


def test_missing_findings_result_is_blocked() -> None:
    verdict = evaluate(POLICY, report({}, has_result=False), TODAY)

    assert verdict.verdict == BLOCKED and verdict.reasons == ("no scan findings result for the image",)


def test_findings_counted_after_the_event_count_the_larger() -> None:
    findings = tuple(Finding(f"CVE-2026-{n}", "HIGH") for n in range(3))

    verdict = evaluate(ScanPolicy(max_findings={"HIGH": 2}), report({"HIGH": 1}, findings), TODAY)

    assert verdict.verdict == BLOCKED and verdict.raw_counts["HIGH"] == 3


def test_top_findings_come_most_severe_first_and_at_most_five() -> None:
    findings = (*(Finding(f"CVE-2026-{n}", "LOW") for n in range(6)), Finding("CVE-2026-9", "CRITICAL"))

    verdict = evaluate(ScanPolicy(), report({}, findings), TODAY)

    assert len(verdict.top_findings) == 5
    assert verdict.top_findings[0].id == "CVE-2026-9"


def test_gate_disabled_verdict_passes_and_says_so() -> None:
    verdict = gate_disabled_verdict()

    assert verdict.verdict == PASSED and verdict.reasons == (GATE_DISABLED,) and verdict.scanning == "disabled"


def test_basic_finding_takes_its_package_from_the_attributes() -> None:
    raw = {
        "name": "CVE-2026-0001",
        "uri": "https://security-tracker.debian.org/tracker/CVE-2026-0001",
        "severity": "HIGH",
        "attributes": [{"key": "package_version", "value": "1.1"}, {"key": "package_name", "value": "openssl"}],
    }

    assert finding_from_basic(raw) == Finding(
        "CVE-2026-0001", "HIGH", "openssl", "", "https://security-tracker.debian.org/tracker/CVE-2026-0001"
    )


def test_enhanced_finding_gives_the_fixed_in_version() -> None:
    raw = {
        "severity": "CRITICAL",
        "title": "CVE-2026-0002 - zlib",
        "packageVulnerabilityDetails": {
            "vulnerabilityId": "CVE-2026-0002",
            "sourceUrl": "https://nvd.nist.gov/vuln/detail/CVE-2026-0002",
            "vulnerablePackages": [{"name": "zlib", "version": "1.2.11", "fixedInVersion": "1.2.12"}],
        },
    }

    finding = finding_from_enhanced(raw)

    assert (finding.id, finding.package, finding.fixed_in) == ("CVE-2026-0002", "zlib", "1.2.12")
