"""Delivery metrics from a ledger fixture with known answers."""

from __future__ import annotations

import datetime as dt

from ecr_pipeline.config import ScanPolicy
from ecr_pipeline.core.scan_policy import ScanReport, evaluate
from ecr_pipeline.delivery_metrics import (
    blocked_by_cves,
    blocked_images,
    build_economy,
    environment_metrics,
    nearest_rank,
)
from ecr_pipeline.economy import BuildEconomyRecord, VerdictRecord, blocking_ids
from ecr_pipeline.notify.model import Finding
from ecr_pipeline.records import DeploymentRecord, ImageRecord

DAY = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def deployment(number: int, pushed: str, ended: str | None, outcome: str | None) -> DeploymentRecord:
    return DeploymentRecord(
        "demo-app",
        "dev",
        f"d-{number}",
        f"{number:040x}",
        f"2026-11-30T{pushed}.000000Z",
        started_at=f"2026-11-30T{pushed}.000000Z",
        ended_at=f"2026-11-30T{ended}.000000Z" if ended else None,
        outcome=outcome,
    )


# A day of dev: four successful deployments, one rolled back (restored 30 minutes later), one failed
# (restored 10 minutes later), one still running, and one that ended the day before the window.
HISTORY = [
    deployment(0, "08:00:00", "08:20:00", "SUCCEEDED"),
    deployment(1, "09:00:00", "09:10:00", "SUCCEEDED"),  # lead time 10 min
    deployment(2, "10:00:00", "10:05:00", "ROLLED_BACK"),
    deployment(3, "10:20:00", "10:35:00", "SUCCEEDED"),  # 15 min; restores 2 after 30 min
    deployment(4, "12:00:00", "12:40:00", "SUCCEEDED"),  # 40 min
    deployment(5, "14:00:00", "14:02:00", "FAILED"),
    deployment(6, "14:05:00", "14:12:00", "SUCCEEDED"),  # 7 min; restores 5 after 10 min
    deployment(7, "16:00:00", None, None),  # running: not counted
]


def test_the_metrics_of_a_day_are_the_ones_counted_by_hand() -> None:
    metrics = environment_metrics("dev", HISTORY, DAY.replace(hour=9), DAY + dt.timedelta(days=1))

    # In the window (from 09:00): deployments 1..6 ended; 0 ended at 08:20, before it.
    assert (metrics.ended, metrics.succeeded, metrics.failed) == (6, 4, 2)
    assert metrics.per_day == 4 / (15 / 24)
    # Lead times of 1, 3, 4, 6: 10, 15, 40, 7 minutes -> median 12.5 min, p90 (nearest rank) 40 min.
    assert metrics.lead_time_median_seconds == 12.5 * 60
    assert metrics.lead_time_p90_seconds == 40 * 60
    assert metrics.change_failure_rate == 2 / 6
    # Restores: 30 min (2 -> 3) and 10 min (5 -> 6).
    assert metrics.time_to_restore_median_seconds == 20 * 60


def test_an_unrestored_failure_has_no_time_to_restore_and_an_empty_window_no_rates() -> None:
    failed_last = [*HISTORY[:6]]
    metrics = environment_metrics("dev", failed_last, DAY.replace(hour=13), DAY.replace(hour=15))
    empty = environment_metrics("dev", HISTORY, DAY.replace(hour=20), DAY.replace(hour=21))

    assert (metrics.ended, metrics.failed, metrics.time_to_restore_median_seconds) == (1, 1, None)
    assert metrics.change_failure_rate == 1.0 and metrics.lead_time_median_seconds is None
    assert (empty.ended, empty.per_day, empty.change_failure_rate) == (0, 0.0, None)


def test_nearest_rank_and_blocked_images() -> None:
    assert nearest_rank([5.0, 1.0, 3.0, 2.0, 4.0], 0.9) == 5.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9) == 9.0
    images = [
        ImageRecord("demo-app", "sha256:a", verdict="PASSED"),
        ImageRecord("demo-app", "sha256:b", verdict="BLOCKED", verdict_reasons=("1 CRITICAL finding(s)",)),
    ]
    assert blocked_images(images) == {"sha256:b": ("1 CRITICAL finding(s)",)}


def decided(
    minute: int, image: str, decision: str, build_id: str | None = None, by: str | None = None
) -> BuildEconomyRecord:
    """One image's decision for the push made at 10:<minute> (push id push-<minute>)."""
    return BuildEconomyRecord(
        "demo-app",
        "branch",
        "main",
        f"{minute:040x}",
        f"2026-11-30T10:{minute:02d}:00.000000Z",
        f"push-{minute}#branch#main",
        image,
        decision,  # type: ignore[arg-type]
        build_id,
        by,
    )


# Five pushes of two images in the window, and one push before it:
# 10:01 builds both images; 10:02 touches only docs (both filtered); 10:03 builds app and is stopped by
# 10:04 (supersede), which also skipped worker for its paths; 10:05 and 10:06 fall in a quiet window:
# 10:05 is coalesced into 10:06's app build, 10:06's worker image existed (a promotion), and 09:00 is
# outside the window.
DECISIONS = [
    BuildEconomyRecord(
        "demo-app", "branch", "main", "0" * 40, "2026-11-30T09:00:00.000000Z", "early", "app", "started", "b-0"
    ),
    decided(1, "app", "started", "b-1"),
    decided(1, "worker", "started", "b-2"),
    decided(2, "app", "filtered"),
    decided(2, "worker", "filtered"),
    decided(3, "app", "superseded", "b-3", by="push-4#branch#main"),
    decided(4, "app", "started", "b-4"),
    decided(4, "worker", "filtered"),
    decided(5, "app", "coalesced", by="push-6#branch#main"),
    decided(6, "app", "started", "b-6"),
    decided(6, "worker", "reused"),
    decided(7, "app", "queued"),
]


def test_the_build_economy_of_a_burst_is_the_one_counted_by_hand() -> None:
    economy = build_economy(DECISIONS, DAY.replace(hour=10), DAY.replace(hour=11))

    # Pushes 1..7 in the window; builds with an id: b-1, b-2, b-3 (stopped later), b-4, b-6.
    assert (economy.pushes, economy.images, economy.builds_started) == (7, 11, 5)
    assert economy.builds_per_push == 5 / 7
    assert (economy.saved_by_filter, economy.saved_by_supersede, economy.saved_by_coalescing) == (3, 1, 1)
    assert (economy.reused, economy.waiting) == (1, 1)


def test_an_empty_window_has_no_builds_per_push() -> None:
    economy = build_economy(DECISIONS, DAY.replace(hour=20), DAY.replace(hour=21))

    assert (economy.pushes, economy.builds_started, economy.builds_per_push) == (0, 0, None)


def verdict(minute: int, digest: str, outcome: str, *cves: str) -> VerdictRecord:
    reasons = ("1 CRITICAL finding(s), at most 0 allowed",) if outcome == "BLOCKED" else ("within the policy",)
    return VerdictRecord(
        "demo-app", digest, f"2026-11-30T10:{minute:02d}:00Z", outcome, "basic", reasons, cves, len(cves)
    )


def test_blocked_images_are_counted_by_their_newest_verdict_with_the_cves_that_blocked_them() -> None:
    verdicts = [
        verdict(1, "sha256:a", "PASSED"),
        verdict(2, "sha256:b", "BLOCKED", "CVE-2023-4863", "CVE-2024-0001"),
        verdict(3, "sha256:c", "BLOCKED", "CVE-2023-4863"),
        # d was blocked, then passed once an allowlist entry let its CVE off: not blocked any more.
        verdict(4, "sha256:d", "BLOCKED", "CVE-2024-0002"),
        verdict(5, "sha256:d", "PASSED"),
        # A failed scan blocks with no CVE: only its reason says why.
        verdict(6, "sha256:e", "BLOCKED"),
    ]

    blocked = blocked_by_cves(verdicts, DAY.replace(hour=10), DAY.replace(hour=11))

    assert blocked.judged == 5
    assert [image["image_digest"] for image in blocked.blocked] == ["sha256:b", "sha256:c", "sha256:e"]
    assert blocked.cves == {"CVE-2023-4863": 2, "CVE-2024-0001": 1}
    assert blocked.blocked[2]["cves"] == [] and blocked.blocked[2]["reasons"]


def test_the_cves_that_block_are_those_over_the_policy_and_not_let_off() -> None:
    policy = ScanPolicy(max_findings={"CRITICAL": 0, "HIGH": 1}, allowlist=())
    findings = (
        Finding("CVE-1", "CRITICAL"),
        Finding("CVE-2", "HIGH"),  # one HIGH is allowed: HIGH is not over its limit
        Finding("CVE-3", "CRITICAL"),
        Finding("CVE-4", "MEDIUM"),  # no limit for MEDIUM
    )
    report = ScanReport("basic", "COMPLETE", {}, "COMPLETE", has_result=True, findings=findings)
    judged = evaluate(policy, report, DAY.date())
    let_off = judged._replace(allowlisted=({"id": "CVE-3"},))
    failed = evaluate(policy, ScanReport("basic", "FAILED", {}), DAY.date())

    assert judged.verdict == "BLOCKED"
    assert blocking_ids(policy, report, judged) == ("CVE-1", "CVE-3")
    assert blocking_ids(policy, report, let_off) == ("CVE-1",)
    assert failed.verdict == "BLOCKED" and blocking_ids(policy, report, failed) == ()
    assert (
        blocking_ids(
            ScanPolicy(max_findings={"CRITICAL": 5}),
            report,
            evaluate(ScanPolicy(max_findings={"CRITICAL": 5}), report, DAY.date()),
        )
        == ()
    )
