"""Delivery metrics from a ledger fixture with known answers."""

from __future__ import annotations

import datetime as dt

from ecr_pipeline.delivery_metrics import blocked_images, environment_metrics, nearest_rank
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
