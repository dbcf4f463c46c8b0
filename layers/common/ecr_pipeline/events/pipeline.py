"""The pipeline's own events (source ecr-pipeline) that tag_image and deploy consume.

Field names follow docs/events.md; every parser names the first bad field.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ecr_pipeline.events.envelope import (
    MalformedEvent,
    optional_str,
    parse_envelope,
    require_list,
    require_mapping,
    require_str,
    require_time,
)
from ecr_pipeline.records import PushRecord

SCAN_VERDICT = "Scan Verdict"
PROMOTION_REQUESTED = "Promotion Requested"
IMAGE_REGISTERED = "Image Registered"
IMAGE_PROMOTED = "Image Promoted"
PROMOTION_FAILED = "Promotion Failed"
DEPLOYMENT_STARTED = "Deployment Started"
DEPLOYMENT_SKIPPED = "Deployment Skipped"
DEPLOYMENT_QUEUED = "Deployment Queued"

VERDICTS = ("PASSED", "BLOCKED")


class VerdictEvent(NamedTuple):
    event_id: str
    region: str
    account: str
    ecr_repository: str
    image_digest: str
    verdict: str
    commit: str | None
    reasons: tuple[str, ...]
    scanning: str


class PromotionRequest(NamedTuple):
    event_id: str
    region: str
    account: str
    ecr_repository: str
    image_digest: str
    push: PushRecord


class PromotedEvent(NamedTuple):
    event_id: str
    region: str
    account: str
    ecr_repository: str
    image_digest: str
    commit: str
    repository_uri: str
    tags: tuple[str, ...]
    pushes: tuple[PushRecord, ...]


def push_from_detail(detail: dict[str, Any], prefix: str) -> PushRecord:
    ref_type = require_str(detail, "ref_type", prefix)
    if ref_type not in ("branch", "tag"):
        raise MalformedEvent(f"{prefix}.ref_type", f"must be branch or tag, got {ref_type!r}")
    return PushRecord(
        repository=require_str(detail, "repository", prefix),
        ref_type=ref_type,
        ref_name=require_str(detail, "ref", prefix),
        commit=require_str(detail, "commit", prefix),
        push_time=require_time(detail, "push_time", prefix),
        push_id=require_str(detail, "push_id", prefix),
        author=str(detail.get("author") or ""),
        message=str(detail.get("message") or ""),
    )


def _string_list(detail: dict[str, Any], key: str) -> tuple[str, ...]:
    values = detail.get(key) or []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise MalformedEvent(f"detail.{key}", "must be a list of strings")
    return tuple(values)


def parse_verdict(event: object) -> VerdictEvent:
    envelope = parse_envelope(event)
    detail = envelope.detail
    verdict = require_str(detail, "verdict", "detail")
    if verdict not in VERDICTS:
        raise MalformedEvent("detail.verdict", f"must be PASSED or BLOCKED, got {verdict!r}")
    return VerdictEvent(
        event_id=envelope.event_id,
        region=envelope.region,
        account=envelope.account,
        ecr_repository=require_str(detail, "ecr_repository", "detail"),
        image_digest=require_str(detail, "image_digest", "detail"),
        verdict=verdict,
        commit=optional_str(detail, "commit", "detail"),
        reasons=_string_list(detail, "reasons"),
        scanning=str(detail.get("scanning") or ""),
    )


def parse_promotion_request(event: object) -> PromotionRequest:
    envelope = parse_envelope(event)
    detail = envelope.detail
    return PromotionRequest(
        event_id=envelope.event_id,
        region=envelope.region,
        account=envelope.account,
        ecr_repository=require_str(detail, "ecr_repository", "detail"),
        image_digest=require_str(detail, "image_digest", "detail"),
        push=push_from_detail(detail, "detail"),
    )


def parse_promoted(event: object) -> PromotedEvent:
    envelope = parse_envelope(event)
    if envelope.detail_type != IMAGE_PROMOTED:
        raise MalformedEvent("detail-type", f"must be {IMAGE_PROMOTED!r}, got {envelope.detail_type!r}")
    detail = envelope.detail
    pushes = tuple(
        push_from_detail(require_mapping(raw, f"detail.pushes[{index}]"), f"detail.pushes[{index}]")
        for index, raw in enumerate(require_list(detail, "pushes", "detail"))
    )
    return PromotedEvent(
        event_id=envelope.event_id,
        region=envelope.region,
        account=envelope.account,
        ecr_repository=require_str(detail, "ecr_repository", "detail"),
        image_digest=require_str(detail, "image_digest", "detail"),
        commit=require_str(detail, "commit", "detail"),
        repository_uri=require_str(detail, "repository_uri", "detail"),
        tags=_string_list(detail, "tags"),
        pushes=pushes,
    )
