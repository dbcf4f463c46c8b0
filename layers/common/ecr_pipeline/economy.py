"""Build economy and blocked CVEs, as records: what start_build decided for each image of each push,
and what each scan verdict blocked on. The ledger keeps them (adapters/economy_ledger.py) and the
delivery metrics count them (delivery_metrics.py); pure, no boto3.

An image of a push ends in one decision:
- started:    a build of the push's commit was started (`build_id`);
- filtered:   no changed file matched the image's paths: no build;
- superseded: a newer push of the branch has its own build: this push's build was never started,
              or was stopped (then it also has a `build_id`);
- coalesced:  the branch's quiet window folded this push into the build of a later push (`by`);
- reused:     an image of the commit existed already: promoted without a build;
- queued:     waiting for the branch's quiet window (becomes started or coalesced).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from ecr_pipeline.config import SEVERITIES

if TYPE_CHECKING:  # the ledger imports this module: no scan code on start_build's cold start
    from ecr_pipeline.config import ScanPolicy
    from ecr_pipeline.core.scan_policy import ScanReport, Verdict

EconomyDecision = Literal["started", "filtered", "superseded", "coalesced", "reused", "queued"]
# At most this many CVE ids per verdict record: the ledger's item stays small whatever the scan found.
MAX_BLOCKING_IDS = 50


class BuildEconomyRecord(NamedTuple):
    """One image of one push and what start_build decided for it."""

    repository: str  # CodeCommit
    ref_type: str
    ref_name: str
    commit: str
    push_time: str
    push_id: str
    ecr_repository: str
    decision: EconomyDecision
    build_id: str | None = None  # the build started for this push, even when it was stopped later
    by: str | None = None  # superseded or coalesced: the push id of the push whose build covers this one


class VerdictRecord(NamedTuple):
    """One scan verdict of an image, and the CVE ids that blocked it (none for a PASSED verdict, or a
    scan that failed: then only the reasons say why)."""

    ecr_repository: str
    image_digest: str
    decided_at: str  # the scan event's time
    verdict: str
    scanning: str
    reasons: tuple[str, ...] = ()
    blocking_ids: tuple[str, ...] = ()
    blocking_count: int = 0  # every blocking finding, also those beyond MAX_BLOCKING_IDS


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def blocking_ids(policy: ScanPolicy, report: ScanReport, verdict: Verdict) -> tuple[str, ...]:
    """The ids of the findings that made `verdict` BLOCKED: every finding, not let off by an active
    allowlist entry, of a severity whose count is over the policy's limit; most severe first. A
    verdict blocked for want of a result (a failed scan) has none."""
    if verdict.verdict != "BLOCKED":
        return ()
    over = {severity for severity, limit in policy.max_findings.items() if verdict.counts.get(severity, 0) > limit}
    let_off = {entry["id"] for entry in verdict.allowlisted}
    found = {finding.id: finding.severity for finding in report.findings if finding.id}
    chosen = [(severity, cve) for cve, severity in found.items() if severity in over and cve not in let_off]
    return tuple(cve for _severity, cve in sorted(chosen, key=lambda item: (_rank(item[0]), item[1])))
