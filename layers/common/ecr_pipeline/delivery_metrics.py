"""Delivery metrics computed from the pipeline's own records (the ledger's deployment history and
images), pure: deployment frequency, lead time from push to deployed, change failure rate, time to
restore, and the images the scan gate blocked.

A deployment counts in a window by when it ended. Lead time runs from the push the deployment was
for (start_build's recorded push time) to the end of its successful deployment. A failure is a
deployment that ended FAILED or ROLLED_BACK; its time to restore runs to the end of the
environment's next successful deployment (a failure not yet restored has none).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable
from typing import NamedTuple

from ecr_pipeline.records import DeploymentRecord, ImageRecord

FAILURES = ("FAILED", "ROLLED_BACK")


class EnvironmentMetrics(NamedTuple):
    environment: str
    ended: int  # deployments that ended in the window
    succeeded: int
    failed: int  # ended FAILED or ROLLED_BACK
    per_day: float  # deployment frequency: successful deployments per day of the window
    lead_time_median_seconds: float | None
    lead_time_p90_seconds: float | None
    change_failure_rate: float | None  # failed / ended
    time_to_restore_median_seconds: float | None


def parse_time(text: str) -> dt.datetime:
    """A ledger time (ISO 8601, `Z` or an offset) as an aware datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def nearest_rank(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value at or above `fraction` of them."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def environment_metrics(
    environment: str, history: Iterable[DeploymentRecord], since: dt.datetime, until: dt.datetime
) -> EnvironmentMetrics:
    ended = sorted(
        (record for record in history if record.outcome and record.ended_at),
        key=lambda record: parse_time(str(record.ended_at)),
    )
    window = [record for record in ended if since <= parse_time(str(record.ended_at)) <= until]
    succeeded = [record for record in window if record.outcome == "SUCCEEDED"]
    failed = [record for record in window if record.outcome in FAILURES]
    lead_times = [
        (parse_time(str(record.ended_at)) - parse_time(record.push_time)).total_seconds() for record in succeeded
    ]
    restores = []
    for failure in failed:
        failed_at = parse_time(str(failure.ended_at))
        restored = next(
            (
                parse_time(str(record.ended_at))
                for record in ended
                if record.outcome == "SUCCEEDED" and parse_time(str(record.ended_at)) > failed_at
            ),
            None,
        )
        if restored is not None:
            restores.append((restored - failed_at).total_seconds())
    days = max((until - since).total_seconds() / 86400, 1 / 86400)
    return EnvironmentMetrics(
        environment=environment,
        ended=len(window),
        succeeded=len(succeeded),
        failed=len(failed),
        per_day=len(succeeded) / days,
        lead_time_median_seconds=statistics.median(lead_times) if lead_times else None,
        lead_time_p90_seconds=nearest_rank(lead_times, 0.9) if lead_times else None,
        change_failure_rate=len(failed) / len(window) if window else None,
        time_to_restore_median_seconds=statistics.median(restores) if restores else None,
    )


def blocked_images(images: Iterable[ImageRecord]) -> dict[str, tuple[str, ...]]:
    """The images the gate blocked (digest -> the verdict's reasons)."""
    return {image.image_digest: image.verdict_reasons for image in images if image.verdict == "BLOCKED"}
