"""tag_image: register built images, record scan verdicts, and promote PASSED images with tags.

Three inputs, one function each:
- an ECR PUSH of a build tag: `register_image` (ledger, "Image Registered", make sure a scan runs);
- a "Scan Verdict": `apply_verdict` (PASSED in the ledger promotes every ref recorded for the commit);
- a "Promotion Requested" (a ref pushed on a commit whose image exists): `promote_requested`.
Both act only as far as the ledger backs them (core/trust.py): the verdict scan_check recorded for
the digest, the image tag_image registered, the pushes start_build recorded.
Tags go on with put_image of the stored manifest; moving tags never go back to an older push
(each is claimed in the ledger with a newer-push condition first).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ecr_pipeline.adapters.ecr import Ecr, ImageNotFound, TagConflict, repository_uri
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.config import ImageConfig, PipelineConfig
from ecr_pipeline.core.naming import commit_of_build_tag
from ecr_pipeline.core.scan_policy import PASSED, VERDICTS, Verdict, gate_disabled_verdict
from ecr_pipeline.core.tagging import REASON_UNCONFIGURED, action_ignore_reason, promotion_tags
from ecr_pipeline.core.trust import backed_pushes, unbacked
from ecr_pipeline.events.ecr import IMAGE_ACTION, ImageAction, parse_image_action
from ecr_pipeline.events.envelope import MalformedEvent, require_mapping, require_str
from ecr_pipeline.events.pipeline import (
    PROMOTION_REQUESTED,
    SCAN_VERDICT,
    ImagePromoted,
    ImageRegistered,
    PromotionFailed,
    PromotionRequested,
    Received,
    ScanVerdict,
    Subject,
    parse_pipeline_event,
)
from ecr_pipeline.observability import logger, trace_subject
from ecr_pipeline.outcomes import Outcome, TagStatus
from ecr_pipeline.records import ImageRecord, PushRecord, push_order

VerdictEvent = Received[ScanVerdict]
PromotionRequest = Received[PromotionRequested]
TagImageEvent = ImageAction | VerdictEvent | PromotionRequest


class TagServices(NamedTuple):
    ecr: Ecr
    ledger: Ledger
    publisher: EventPublisher


class PromotionOutcome:
    """The tags of one promotion, sorted by what happened to each as they are tried."""

    __slots__ = ("added", "already", "failed", "pushes", "superseded")

    def __init__(self) -> None:
        self.added: list[str] = []
        self.already: list[str] = []
        self.superseded: list[str] = []
        self.failed: list[str] = []
        self.pushes: list[PushRecord] = []

    def result(self) -> Outcome[TagStatus]:
        return Outcome(
            "promoted" if self.pushes else "nothing to promote",
            facts={
                "added": self.added,
                "already": self.already,
                "superseded": self.superseded,
                "failed": self.failed,
                "pushes": [push.push_id for push in self.pushes],
            },
        )


def parse_tag_image_event(event: Any) -> TagImageEvent:
    """The typed form of any event tag_image subscribes to."""
    body = require_mapping(event, "event")
    detail_type = require_str(body, "detail-type", "")  # bounded and cleaned before it is shown
    if detail_type == IMAGE_ACTION:
        return parse_image_action(body)
    if detail_type == SCAN_VERDICT:
        return parse_pipeline_event(body, ScanVerdict)
    if detail_type == PROMOTION_REQUESTED:
        return parse_pipeline_event(body, PromotionRequested)
    raise MalformedEvent(
        "detail-type", f"must be {IMAGE_ACTION!r}, {SCAN_VERDICT!r} or {PROMOTION_REQUESTED!r}, got {detail_type!r}"
    )


def idempotency_fact(message: TagImageEvent) -> dict[str, Any]:
    """The business fact an event states: a second event stating the same fact acts once."""
    if isinstance(message, ImageAction):
        return {
            "fact": "image pushed",
            "ecr_repository": message.ecr_repository,
            "image_digest": message.image_digest,
            "image_tag": message.image_tag,
            "action": message.action_type,
            "result": message.result,
        }
    record = message.record
    if isinstance(record, ScanVerdict):
        return {
            "fact": "verdict",
            "ecr_repository": record.subject.ecr_repository,
            "image_digest": record.subject.image_digest,
            "verdict": record.verdict.verdict,
        }
    push = _request_push(record)
    return {
        "fact": "promotion requested",
        "ecr_repository": record.subject.ecr_repository,
        "image_digest": record.subject.image_digest,
        "push_id": push.push_id,
        "push_time": push.push_time,
    }


def _request_push(request: PromotionRequested) -> PushRecord:
    push = request.subject.push
    assert push is not None, "from_detail requires the push of a Promotion Requested"
    return push


def skip_reason(message: TagImageEvent, config: PipelineConfig) -> str | None:
    """Why an event needs no work at all; checked before idempotency, so retags cost no AWS call."""
    if isinstance(message, ImageAction):
        return action_ignore_reason(message, config)
    if config.image(message.record.subject.ecr_repository) is None:
        return REASON_UNCONFIGURED
    return None


def handle(message: TagImageEvent, config: PipelineConfig, services: TagServices) -> Outcome[TagStatus]:
    # Everything one event publishes (registered and verdict; failed tags and promoted) in one call.
    with services.publisher.batch():
        if isinstance(message, ImageAction):
            return register_image(message, config, services)
        if isinstance(message.record, ScanVerdict):
            return apply_verdict(message, message.record, config, services)
        return promote_requested(message, message.record, config, services)


def image_subject(
    image_config: ImageConfig, image_digest: str, commit: str, uri: str, pushes: list[PushRecord]
) -> Subject:
    """What every image event is about: the newest push it is for and the image."""
    return Subject.of_image(
        pushes, image_config.codecommit_repository, commit, image_config.ecr_repository, image_digest, uri
    )


# --- the build push --------------------------------------------------------------------------


def register_image(action: ImageAction, config: PipelineConfig, services: TagServices) -> Outcome[TagStatus]:
    reason = action_ignore_reason(action, config)
    image_config = config.image(action.ecr_repository)
    commit = commit_of_build_tag(action.image_tag)
    if reason or image_config is None or commit is None:
        logger.info(
            "ECR action ignored",
            ecr_repository=action.ecr_repository,
            action=action.action_type,
            image_tag=action.image_tag,
            reason=reason,
        )
        return Outcome("ignored", reason)

    uri = repository_uri(action.account, action.region, action.ecr_repository)
    stored = services.ledger.record_image(
        ImageRecord(
            ecr_repository=action.ecr_repository,
            image_digest=action.image_digest,
            commit=commit,
            codecommit_repository=image_config.codecommit_repository,
            pushed_at=action.time,
            repository_uri=uri,
        )
    )
    pushes = services.ledger.pushes_of_commit(image_config.codecommit_repository, commit)
    subject = image_subject(image_config, action.image_digest, commit, uri, pushes)
    trace_subject(subject)
    # The scan first: a retry after a failed start must not announce the image twice.
    scan = ensure_scan(image_config, action.image_digest, services)
    services.publisher.publish(ImageRegistered(subject, tuple(pushes), pushed_at=action.time, scan=scan))
    if not image_config.scan.gate:
        verdict = gate_disabled_verdict()
        services.ledger.record_verdict(
            action.ecr_repository, action.image_digest, verdict.verdict, list(verdict.reasons), verdict.scanning
        )
        services.publisher.publish(ScanVerdict(subject, verdict, pushes=tuple(pushes)))
    elif stored.verdict in VERDICTS:
        # The scan overtook this registration: scan_check kept its verdict on the item; told now.
        kept = Verdict(stored.verdict, stored.verdict_reasons, stored.scanning or image_config.scan.scanning)
        services.publisher.publish(ScanVerdict(subject, kept, pushes=tuple(pushes)))
    logger.info("image registered", ecr_repository=action.ecr_repository, commit=commit, scan=scan)
    return Outcome("registered", facts={"image_digest": action.image_digest, "commit": commit, "scan": scan})


def ensure_scan(image_config: ImageConfig, image_digest: str, services: TagServices) -> str:
    """Start a basic scan where ECR will not start one itself; returns what was done."""
    if not image_config.scan.gate:
        return "not needed: scan gate disabled by configuration"
    if image_config.scan.scanning != "basic":
        return "enhanced scanning scans every push"
    if services.ecr.scan_on_push(image_config.ecr_repository):
        return "scan on push"
    if services.ecr.start_scan(image_config.ecr_repository, image_digest):
        return "scan started"
    # Basic scanning allows one scan per image per day: the one already made will report.
    logger.info("scan limit reached for today", ecr_repository=image_config.ecr_repository, image_digest=image_digest)
    return "scan limit reached for today"


# --- verdicts and promotion -------------------------------------------------------------------


def apply_verdict(
    event: VerdictEvent, verdict: ScanVerdict, config: PipelineConfig, services: TagServices
) -> Outcome[TagStatus]:
    subject, told = verdict.subject, verdict.verdict
    image_config = config.image(subject.ecr_repository)
    digest = subject.image_digest
    if image_config is None or digest is None:
        return Outcome("ignored", REASON_UNCONFIGURED)
    image = services.ledger.get_image(subject.ecr_repository, digest)
    if image is None or image.verdict is None:
        return unbacked("detail.verdict", "is not recorded in the ledger for this image")
    if image.verdict != told.verdict:
        return unbacked("detail.verdict", f"is {told.verdict}, but the ledger holds {image.verdict} for this image")
    if image.verdict != PASSED:
        logger.info("image blocked: no promotion", ecr_repository=subject.ecr_repository, reasons=image.verdict_reasons)
        return Outcome("blocked", facts={"reasons": list(image.verdict_reasons)})
    if not image.commit:
        return Outcome("ignored", "no build tag on the image: its commit is unknown")
    pushes = services.ledger.pushes_of_commit(image_config.codecommit_repository, image.commit)
    uri = image.repository_uri or repository_uri(event.account, event.region, subject.ecr_repository)
    try:
        outcome = promote(
            config, image_config, digest, image.commit, uri, pushes, list(image.verdict_reasons), services
        )
    except ImageNotFound as gone:
        return _image_gone(gone)
    return outcome.result()


def promote_requested(
    event: PromotionRequest, request: PromotionRequested, config: PipelineConfig, services: TagServices
) -> Outcome[TagStatus]:
    subject, push = request.subject, _request_push(request)
    image_config = config.image(subject.ecr_repository)
    digest = subject.image_digest
    if image_config is None or digest is None:
        return Outcome("ignored", REASON_UNCONFIGURED)
    image = services.ledger.get_image(subject.ecr_repository, digest)
    if image is None or image.verdict != PASSED:
        # The push is in the ledger: the verdict, when it is PASSED, promotes this ref too.
        state = "no verdict yet" if image is None or image.verdict is None else f"verdict {image.verdict}"
        logger.info("promotion waits for a PASSED verdict", image_digest=digest, state=state)
        return Outcome("waiting", state)
    if image.commit != push.commit:
        return unbacked("detail.image_digest", f"is not the image the ledger registered for commit {push.commit}")
    recorded = services.ledger.pushes_of_commit(image_config.codecommit_repository, push.commit)
    backed = backed_pushes([push], recorded)
    if not backed:
        return unbacked("detail.push_id", "is not a push the ledger recorded for this commit")
    uri = image.repository_uri or repository_uri(event.account, event.region, subject.ecr_repository)
    try:
        outcome = promote(config, image_config, digest, push.commit, uri, backed, list(image.verdict_reasons), services)
    except ImageNotFound as gone:
        return _image_gone(gone)
    return outcome.result()


def _image_gone(gone: ImageNotFound) -> Outcome[TagStatus]:
    """The image was deleted from ECR before its promotion: nothing to tag, nothing claimed, no retry."""
    logger.warning("image deleted before its promotion", reason=str(gone))
    return Outcome("image deleted", f"the image is no longer in ECR: {gone}")


def plan_tags(config: PipelineConfig, image_config: ImageConfig, pushes: list[PushRecord]) -> dict[str, PushRecord]:
    """Each promotion tag with the push it is for; a tag two pushes ask for goes to the newer one."""
    repository = config.repository(image_config.codecommit_repository)
    default_branch = repository.default_branch if repository else "main"
    plan: dict[str, PushRecord] = {}
    for push in sorted(pushes, key=push_order):
        for tag in promotion_tags(image_config.promote, default_branch, push):
            plan[tag] = push
    return plan


def promote(
    config: PipelineConfig,
    image_config: ImageConfig,
    image_digest: str,
    commit: str,
    uri: str,
    pushes: list[PushRecord],
    verdict_reasons: list[str],
    services: TagServices,
) -> PromotionOutcome:
    outcome = PromotionOutcome()
    if not pushes:
        logger.info("no push recorded for the commit: nothing to promote", commit=commit)
        return outcome
    ecr_repository = image_config.ecr_repository
    plan = plan_tags(config, image_config, pushes)
    # Read before any tag is claimed: an image deleted meanwhile leaves no claim behind.
    manifest = services.ecr.get_manifest(ecr_repository, image_digest)
    pushes_kept: dict[str, PushRecord] = {push.push_id: push for push in pushes}
    pushes_with_tags: set[str] = set()
    for tag, push in plan.items():
        if not services.ledger.claim_tag(ecr_repository, tag, image_digest, push):
            outcome.superseded.append(tag)
            continue
        pushes_with_tags.add(push.push_id)
        try:
            added = services.ecr.put_tag(ecr_repository, image_digest, tag, manifest)
        except TagConflict as conflict:
            outcome.failed.append(tag)
            logger.warning("promotion tag refused", tag=tag, reason=str(conflict))
            services.publisher.publish(
                PromotionFailed(
                    Subject.of_push(push, ecr_repository, image_digest, uri),
                    tag=tag,
                    reason=str(conflict),
                    holder_digest=conflict.holder_digest,
                )
            )
            continue
        (outcome.added if added else outcome.already).append(tag)

    # A push all of whose tags a newer push holds is left out: the newer push speaks for its ref.
    tagged_pushes = {push.push_id for push in plan.values()}
    outcome.pushes = [
        push for push in pushes_kept.values() if push.push_id in pushes_with_tags or push.push_id not in tagged_pushes
    ]
    if not outcome.pushes:
        logger.info("every promotion tag is held by a newer push", superseded=outcome.superseded)
        return outcome
    services.publisher.publish(
        ImagePromoted(
            image_subject(image_config, image_digest, commit, uri, outcome.pushes),
            pushes=tuple(outcome.pushes),
            tags=(*outcome.added, *outcome.already),
            tags_added=tuple(outcome.added),
            superseded_tags=tuple(outcome.superseded),
            failed_tags=tuple(outcome.failed),
            verdict_reasons=tuple(verdict_reasons),
        )
    )
    return outcome
