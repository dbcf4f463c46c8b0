"""scan_check's decision: a scan result and the repository's policy in, a verdict out.

Fails closed: a scan that did not complete, an unsupported image, or no findings result is
BLOCKED with that reason, never PASSED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ecr_pipeline.config import SEVERITIES, ScanPolicy
from ecr_pipeline.notify.model import Finding

PASSED = "PASSED"
BLOCKED = "BLOCKED"
VERDICTS = (PASSED, BLOCKED)
GATE_DISABLED = "scan gate disabled by configuration"
TOP_FINDINGS = 5

# Statuses of describe_image_scan_findings that carry a usable result (ACTIVE: enhanced, continuous).
_RESULT_STATUSES = ("COMPLETE", "ACTIVE")
# Event statuses that announce a result; anything else (FAILED, ...) blocks without asking.
_EVENT_OK_STATUSES = ("COMPLETE", "INITIAL_SCAN_COMPLETE", "SCAN_COMPLETE", "ACTIVE")
_RANK = {severity: rank for rank, severity in enumerate((*SEVERITIES, "UNTRIAGED"))}


class ScanReport(NamedTuple):
    """What is known about one image's scan: the event and, when read, the findings API."""

    scanning: str  # basic | enhanced
    event_status: str
    event_counts: dict[str, int]
    result_status: str | None = None  # describe_image_scan_findings imageScanStatus.status
    result_description: str = ""
    has_result: bool = False  # the API returned imageScanFindings
    result_counts: Mapping[str, int] = MappingProxyType({})
    findings: tuple[Finding, ...] = ()


class Verdict(NamedTuple):
    verdict: str
    reasons: tuple[str, ...]
    scanning: str
    counts: Mapping[str, int] = MappingProxyType({})
    raw_counts: Mapping[str, int] = MappingProxyType({})
    top_findings: tuple[Finding, ...] = ()
    allowlisted: tuple[dict[str, str], ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict == PASSED

    def as_detail(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "scanning": self.scanning,
            "counts": dict(self.counts),
            "raw_counts": dict(self.raw_counts),
            "top_findings": [finding.as_detail() for finding in self.top_findings],
            "allowlisted": list(self.allowlisted),
        }


def gate_disabled_verdict() -> Verdict:
    return Verdict(PASSED, (GATE_DISABLED,), "disabled")


def event_announces_result(status: str) -> bool:
    return status in _EVENT_OK_STATUSES


def _severity_rank(severity: str) -> int:
    return _RANK.get(severity, len(_RANK))


def merged_counts(report: ScanReport) -> dict[str, int]:
    """Per severity, the largest count any source gives: findings can grow after the event."""
    from_findings: dict[str, int] = {}
    for finding in report.findings:
        from_findings[finding.severity] = from_findings.get(finding.severity, 0) + 1
    counts: dict[str, int] = {}
    for source in (report.event_counts, report.result_counts, from_findings):
        for severity, count in source.items():
            if severity != "TOTAL":
                counts[severity] = max(counts.get(severity, 0), count)
    return dict(sorted(counts.items(), key=lambda item: _severity_rank(item[0])))


def _blocked(reason: str, report: ScanReport) -> Verdict:
    counts = merged_counts(report)
    return Verdict(BLOCKED, (reason,), report.scanning, counts=counts, raw_counts=counts)


def evaluate(policy: ScanPolicy, report: ScanReport, today: dt.date) -> Verdict:
    """The verdict of `policy` on `report`; an allowlist entry counts only up to its expiry date."""
    if not event_announces_result(report.event_status):
        return _blocked(f"scan status {report.event_status}: no result to judge", report)
    if report.result_status is not None and report.result_status not in _RESULT_STATUSES:
        detail = f" ({report.result_description})" if report.result_description else ""
        return _blocked(f"scan status {report.result_status}{detail}", report)
    if not report.has_result:
        return _blocked("no scan findings result for the image", report)

    raw_counts = merged_counts(report)
    active = {entry.cve: entry for entry in policy.allowlist if entry.active_on(today)}
    expired = {entry.cve: entry for entry in policy.allowlist if not entry.active_on(today)}
    found_ids = {finding.id for finding in report.findings}

    counts = dict(raw_counts)
    allowlisted: list[dict[str, str]] = []
    for finding in report.findings:
        entry = active.get(finding.id)
        if entry is None:
            continue
        # One CVE can be found in several packages: each occurrence was counted, each is let off.
        counts[finding.severity] = max(0, counts.get(finding.severity, 0) - 1)
        if all(listed["id"] != finding.id for listed in allowlisted):
            allowlisted.append(
                {
                    "id": finding.id,
                    "severity": finding.severity,
                    "expires": entry.expires.isoformat(),
                    "reason": entry.reason,
                }
            )

    reasons: list[str] = []
    for severity, limit in policy.max_findings.items():
        count = counts.get(severity, 0)
        if count > limit:
            reasons.append(f"{count} {severity} finding(s), at most {limit} allowed")
    blocked = bool(reasons)
    for cve in sorted(expired.keys() & found_ids):
        reasons.append(f"allowlist entry for {cve} expired on {expired[cve].expires.isoformat()}: it counts again")
    if not blocked:
        limits = ", ".join(f"{sev} {counts.get(sev, 0)}/{limit}" for sev, limit in policy.max_findings.items())
        reasons.insert(0, f"within the policy ({limits})" if limits else "the policy sets no limit")

    allowlisted_ids = {entry["id"] for entry in allowlisted}
    ranked = sorted(
        (finding for finding in {f.id: f for f in report.findings}.values() if finding.id not in allowlisted_ids),
        key=lambda finding: (_severity_rank(finding.severity), finding.id),
    )
    return Verdict(
        verdict=BLOCKED if blocked else PASSED,
        reasons=tuple(reasons),
        scanning=report.scanning,
        counts=counts,
        raw_counts=raw_counts,
        top_findings=tuple(ranked[:TOP_FINDINGS]),
        allowlisted=tuple(allowlisted),
    )


def _attribute(finding: dict[str, Any], key: str) -> str:
    for attribute in finding.get("attributes") or []:
        if attribute.get("key") == key:
            return str(attribute.get("value", ""))
    return ""


def finding_from_basic(raw: dict[str, Any]) -> Finding:
    """A basic-scanning finding (`findings[]`): the CVE is its name; basic scanning gives no fix version."""
    return Finding(
        id=str(raw.get("name", "")),
        severity=str(raw.get("severity", "UNDEFINED")).upper(),
        package=_attribute(raw, "package_name"),
        url=str(raw.get("uri", "")),
    )


def finding_from_enhanced(raw: dict[str, Any]) -> Finding:
    """An enhanced-scanning finding (`enhancedFindings[]`, Amazon Inspector)."""
    details = raw.get("packageVulnerabilityDetails") or {}
    packages = details.get("vulnerablePackages") or [{}]
    fixed_in = str(packages[0].get("fixedInVersion", ""))
    return Finding(
        id=str(details.get("vulnerabilityId") or raw.get("title", "")),
        severity=str(raw.get("severity", "UNTRIAGED")).upper(),
        package=str(packages[0].get("name", "")),
        fixed_in="" if fixed_in == "NotAvailable" else fixed_in,
        url=str(details.get("sourceUrl") or ""),
    )
