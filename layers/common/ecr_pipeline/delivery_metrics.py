"""Delivery metrics computed from the pipeline's own records (the ledger's deployment history and
images), pure: deployment frequency, lead time from push to deployed, change failure rate, time to
restore, the build economy (builds started per push, builds saved by path filters, supersede and
the quiet window's coalescing) and the images the scan gate blocked with the CVEs that blocked them.

A deployment counts in a window by when it ended. Lead time runs from the push the deployment was
for (start_build's recorded push time) to the end of its successful deployment. A failure is a
deployment that ended FAILED or ROLLED_BACK; its time to restore runs to the end of the
environment's next successful deployment (a failure not yet restored has none).

Build economy counts each image of each push whose push time is in the window, by what start_build
decided for it (economy.py): a build started counts as started even when a newer push stopped it
later (it is then also saved by supersede: the rest of its run). Blocked images: each image's newest
verdict in the window, blocked when that verdict is BLOCKED (an image blocked and later passed, after
an allowlist entry, is not blocked any more).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable
from typing import Any, NamedTuple

from ecr_pipeline.economy import BuildEconomyRecord, VerdictRecord
from ecr_pipeline.records import DeploymentRecord, ImageRecord, push_order

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


class BuildEconomy(NamedTuple):
    pushes: int  # pushes with at least one image decided in the window
    images: int  # image decisions (one per image of a push)
    builds_started: int
    builds_per_push: float | None
    saved_by_filter: int  # no changed file matched the image's paths
    saved_by_supersede: int  # not started, or stopped, because a newer push of the branch builds
    saved_by_coalescing: int  # folded into a later push's build by the quiet window
    reused: int  # the commit's image existed: promoted without a build
    waiting: int  # still queued for a quiet window


def _in_window(text: str, since: dt.datetime, until: dt.datetime) -> bool:
    return since <= parse_time(text) <= until


def build_economy(decisions: Iterable[BuildEconomyRecord], since: dt.datetime, until: dt.datetime) -> BuildEconomy:
    window = [record for record in decisions if _in_window(record.push_time, since, until)]
    pushes = {(record.repository, *push_order(record)) for record in window}
    started = sum(1 for record in window if record.build_id)

    def decided(decision: str) -> int:
        return sum(1 for record in window if record.decision == decision)

    return BuildEconomy(
        pushes=len(pushes),
        images=len(window),
        builds_started=started,
        builds_per_push=started / len(pushes) if pushes else None,
        saved_by_filter=decided("filtered"),
        saved_by_supersede=decided("superseded"),
        saved_by_coalescing=decided("coalesced"),
        reused=decided("reused"),
        waiting=decided("queued"),
    )


class BlockedImages(NamedTuple):
    judged: int  # images with a verdict in the window
    blocked: tuple[dict[str, Any], ...]  # each: ecr_repository, image_digest, decided_at, reasons, cves
    cves: dict[str, int]  # CVE id -> how many of the blocked images it blocked, most first


def blocked_by_cves(verdicts: Iterable[VerdictRecord], since: dt.datetime, until: dt.datetime) -> BlockedImages:
    newest: dict[tuple[str, str], VerdictRecord] = {}
    for record in sorted(verdicts, key=lambda record: parse_time(record.decided_at)):
        if _in_window(record.decided_at, since, until):
            newest[(record.ecr_repository, record.image_digest)] = record
    blocked = [record for record in newest.values() if record.verdict == "BLOCKED"]
    counts: dict[str, int] = {}
    for record in blocked:
        for cve in set(record.blocking_ids):
            counts[cve] = counts.get(cve, 0) + 1
    return BlockedImages(
        judged=len(newest),
        blocked=tuple(
            {
                "ecr_repository": record.ecr_repository,
                "image_digest": record.image_digest,
                "decided_at": record.decided_at,
                "reasons": list(record.reasons),
                "cves": list(record.blocking_ids),
                "cve_count": record.blocking_count,
            }
            for record in blocked
        ),
        cves=dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
    )
