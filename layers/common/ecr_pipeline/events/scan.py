"""Scan results, basic ("ECR Image Scan", aws.ecr) and enhanced ("Inspector2 Scan", aws.inspector2),
as one `ScanEvent` shape: the rest of the pipeline never looks at which one it was.

Differences the parser absorbs: the enhanced event names the repository by ARN and adds a
`TOTAL` count; the basic one leaves out a severity with no findings.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from ecr_pipeline.events.envelope import MalformedEvent, parse_envelope, require_mapping, require_str

BASIC_SCAN = "ECR Image Scan"
ENHANCED_SCAN = "Inspector2 Scan"
Scanning = Literal["basic", "enhanced"]
_REPOSITORY_ARN_MARK = ":repository/"


class ScanEvent(NamedTuple):
    event_id: str
    time: str
    region: str
    account: str
    scanning: Scanning
    ecr_repository: str
    image_digest: str
    image_tags: tuple[str, ...]
    scan_status: str  # COMPLETE | FAILED (basic); INITIAL_SCAN_COMPLETE, ... (enhanced)
    severity_counts: dict[str, int]  # without TOTAL; a severity with no findings may be absent


def repository_name(value: str) -> str:
    """`demo-app` from either `demo-app` or `arn:aws:ecr:<region>:<account>:repository/demo-app`."""
    if value.startswith("arn:"):
        _, mark, name = value.partition(_REPOSITORY_ARN_MARK)
        if not mark or not name:
            raise MalformedEvent("detail.repository-name", f"is not an ECR repository ARN: {value!r}")
        return name
    return value


def _counts(detail: dict[str, Any]) -> dict[str, int]:
    raw = detail.get("finding-severity-counts")
    if raw is None:
        return {}
    counts = require_mapping(raw, "detail.finding-severity-counts")
    result: dict[str, int] = {}
    for severity, count in counts.items():
        if severity == "TOTAL":
            continue
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise MalformedEvent(f"detail.finding-severity-counts.{severity}", f"must be a count, got {count!r}")
        result[str(severity).upper()] = count
    return result


def _tags(detail: dict[str, Any]) -> tuple[str, ...]:
    raw = detail.get("image-tags")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(tag, str) for tag in raw):
        raise MalformedEvent("detail.image-tags", "must be a list of strings")
    return tuple(raw)


def parse_scan_event(event: object) -> ScanEvent:
    envelope = parse_envelope(event)
    scanning: Scanning
    if envelope.detail_type == BASIC_SCAN:
        scanning = "basic"
    elif envelope.detail_type == ENHANCED_SCAN:
        scanning = "enhanced"
    else:
        raise MalformedEvent(
            "detail-type", f"must be {BASIC_SCAN!r} or {ENHANCED_SCAN!r}, got {envelope.detail_type!r}"
        )
    detail = envelope.detail
    return ScanEvent(
        event_id=envelope.event_id,
        time=envelope.time,
        region=envelope.region,
        account=envelope.account,
        scanning=scanning,
        ecr_repository=repository_name(require_str(detail, "repository-name", "detail")),
        image_digest=require_str(detail, "image-digest", "detail"),
        image_tags=_tags(detail),
        scan_status=require_str(detail, "scan-status", "detail"),
        severity_counts=_counts(detail),
    )
