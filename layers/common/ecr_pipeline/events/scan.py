"""Scan results, basic ("ECR Image Scan", aws.ecr) and enhanced ("Inspector2 Scan", aws.inspector2),
as one `ScanEvent` shape: the rest of the pipeline never looks at which one it was.

Differences the parser absorbs: the enhanced event names the repository by ARN and adds a
`TOTAL` count; the basic one leaves out a severity with no findings.
"""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple

from ecr_pipeline.events.ecr import DIGEST_SHAPE
from ecr_pipeline.events.envelope import (
    ECR_REPOSITORY,
    IMAGE_DIGEST,
    IMAGE_TAG,
    MAX_FIELD,
    MalformedEvent,
    check_arn,
    parse_envelope,
    require_mapping,
    require_match,
)

BASIC_SCAN = "ECR Image Scan"
ENHANCED_SCAN = "Inspector2 Scan"
Scanning = Literal["basic", "enhanced"]
_REPOSITORY_ARN_MARK = "repository/"
# More tags than one image can have (ECR allows 1,000 per image): a bound, not ECR's rule.
MAX_TAGS = 1000


_NAME_OR_ARN = re.compile(r"\S{2,2048}")
_STATUS = re.compile(r"[A-Z][A-Z_]{0,63}")
_SEVERITY = re.compile(r"[A-Za-z_]{1,64}")


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


def repository_name(value: str, home: tuple[str, str] | None = None) -> str:
    """`demo-app` from either `demo-app` or `arn:aws:ecr:<region>:<account>:repository/demo-app`;
    with `home` (the event's region and account), an ARN of another account or region is refused."""
    field = "detail.repository-name"
    if value.startswith("arn:"):
        _, region, account, resource = check_arn(value, field, "ecr")
        if not region or not account or not resource.startswith(_REPOSITORY_ARN_MARK):
            raise MalformedEvent(field, f"is not an ECR repository ARN: {value[:80]!r}")
        if home is not None and (region, account) != home:
            raise MalformedEvent(field, "names a repository of another account or region than the event's")
        value = resource.removeprefix(_REPOSITORY_ARN_MARK)
    if not (ECR_REPOSITORY.fullmatch(value) and 2 <= len(value) <= 256):
        raise MalformedEvent(field, f"must be an ECR repository name or ARN, got {value[:80]!r}")
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
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2**53:
            shown = repr(count)[:80] if not isinstance(count, int) else "out of range"
            raise MalformedEvent(f"detail.finding-severity-counts.{severity}", f"must be a count, got {shown}")
        if not _SEVERITY.fullmatch(severity):
            raise MalformedEvent("detail.finding-severity-counts", "must be keyed by severity names")
        result[severity.upper()] = count
    return result


def _tags(detail: dict[str, Any]) -> tuple[str, ...]:
    raw = detail.get("image-tags")
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_TAGS:
        raise MalformedEvent("detail.image-tags", f"must be a list of at most {MAX_TAGS} tags")
    for index, tag in enumerate(raw):
        if not isinstance(tag, str) or len(tag) > MAX_FIELD or not IMAGE_TAG.fullmatch(tag):
            raise MalformedEvent(f"detail.image-tags[{index}]", "must be an ECR image tag")
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
        ecr_repository=repository_name(
            require_match(detail, "repository-name", "detail", _NAME_OR_ARN, "a name"),
            (envelope.region, envelope.account),
        ),
        image_digest=require_match(detail, "image-digest", "detail", IMAGE_DIGEST, DIGEST_SHAPE),
        image_tags=_tags(detail),
        scan_status=require_match(detail, "scan-status", "detail", _STATUS, "a scan status (capitals and _)"),
        severity_counts=_counts(detail),
    )
