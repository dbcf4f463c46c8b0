"""ECR "ECR Image Action" events (source aws.ecr) as `ImageAction` objects."""

from __future__ import annotations

from typing import NamedTuple

from ecr_pipeline.events.envelope import (
    IMAGE_DIGEST,
    IMAGE_TAG,
    MalformedEvent,
    parse_envelope,
    require_ecr_repository,
    require_match,
    require_str,
)

IMAGE_ACTION = "ECR Image Action"
DIGEST_SHAPE = "sha256: and 64 lowercase hex digits"


class ImageAction(NamedTuple):
    """One PUSH or DELETE of an image (one tag at most) in one repository."""

    event_id: str
    time: str
    region: str
    account: str
    ecr_repository: str
    image_digest: str
    action_type: str  # PUSH | DELETE
    result: str  # SUCCESS | FAILURE
    image_tag: str | None  # absent for a push by digest and for many deletes


def parse_image_action(event: object) -> ImageAction:
    envelope = parse_envelope(event)
    if envelope.detail_type != IMAGE_ACTION:
        raise MalformedEvent("detail-type", f"must be {IMAGE_ACTION!r}, got {envelope.detail_type!r}")
    detail = envelope.detail
    return ImageAction(
        event_id=envelope.event_id,
        time=envelope.time,
        region=envelope.region,
        account=envelope.account,
        ecr_repository=require_ecr_repository(detail, "repository-name", "detail"),
        image_digest=require_match(detail, "image-digest", "detail", IMAGE_DIGEST, DIGEST_SHAPE),
        action_type=require_str(detail, "action-type", "detail"),
        result=require_str(detail, "result", "detail"),
        image_tag=None
        if detail.get("image-tag") is None
        else require_match(detail, "image-tag", "detail", IMAGE_TAG, "an ECR image tag"),
    )
