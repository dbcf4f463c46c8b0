"""scan_check: one code path for basic and enhanced scan events, ending in one "Scan Verdict".

It acts only on images the pipeline registered (the ledger's image item, written by tag_image),
records the verdict on that item, and then publishes it: tag_image promotes what the ledger says,
so a "Scan Verdict" that the ledger does not back moves nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from ecr_pipeline.adapters.ecr import Ecr, repository_uri
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.config import PipelineConfig
from ecr_pipeline.core.naming import is_build_tag
from ecr_pipeline.core.scan_policy import (
    ScanReport,
    evaluate,
    event_announces_result,
    finding_from_basic,
    finding_from_enhanced,
)
from ecr_pipeline.economy import VerdictRecord, blocking_ids
from ecr_pipeline.events.pipeline import ScanVerdict, Subject
from ecr_pipeline.events.scan import ScanEvent
from ecr_pipeline.observability import logger, trace_subject
from ecr_pipeline.outcomes import Outcome, ScanStatus

REASON_BEFORE_REGISTRATION = (
    "the scan came before tag_image registered the image: its verdict is kept on the image and told at the registration"
)
REASON_NOT_REGISTERED = "the image was not registered by the pipeline (pushed by hand or by another tool)"
REASON_GATE_OFF = "scan gate disabled by configuration: the verdict was given when the image was registered"


class ScanServices(NamedTuple):
    ecr: Ecr
    ledger: Ledger
    publisher: EventPublisher


def idempotency_fact(scan: ScanEvent) -> dict[str, Any]:
    """The same scan outcome for the same digest acts once, whichever delivery brings it."""
    return {
        "fact": "scan",
        "scanning": scan.scanning,
        "ecr_repository": scan.ecr_repository,
        "image_digest": scan.image_digest,
        "scan_status": scan.scan_status,
        "counts": scan.severity_counts,
    }


def read_report(scan: ScanEvent, services: ScanServices) -> ScanReport:
    """The event, completed with every page of the findings when the event announces a result."""
    return findings_report(
        services.ecr, scan.scanning, scan.ecr_repository, scan.image_digest, scan.scan_status, scan.severity_counts
    )


def findings_report(
    ecr: Ecr, scanning: str, ecr_repository: str, image_digest: str, status: str, counts: dict[str, int]
) -> ScanReport:
    """What a scan event says (`status`, `counts`) and, when it announces a result, what ECR's findings
    API says now: scan_check at the scan, the traffic-shift gate again just before traffic moves."""
    report = ScanReport(scanning=scanning, event_status=status, event_counts=counts)
    if not event_announces_result(status):
        return report
    result = ecr.scan_findings(ecr_repository, image_digest)
    if not result.found:
        return report._replace(result_status="SCAN_NOT_FOUND", result_description=result.description)
    findings = tuple(finding_from_basic(raw) for raw in result.findings) + tuple(
        finding_from_enhanced(raw) for raw in result.enhanced_findings
    )
    return report._replace(
        result_status=result.status,
        result_description=result.description,
        has_result=result.has_result,
        result_counts=result.severity_counts,
        findings=findings,
    )


def check_scan(scan: ScanEvent, config: PipelineConfig, services: ScanServices, today: dt.date) -> Outcome[ScanStatus]:
    image_config = config.image(scan.ecr_repository)
    if image_config is None:
        logger.info("scan ignored: repository not configured", ecr_repository=scan.ecr_repository)
        return Outcome("ignored", "the ECR repository is not in pipeline.yaml")
    if not image_config.scan.gate:
        logger.info("scan ignored", ecr_repository=scan.ecr_repository, reason=REASON_GATE_OFF)
        return Outcome("ignored", REASON_GATE_OFF)

    image = services.ledger.get_image(scan.ecr_repository, scan.image_digest)
    registered = image is not None and bool(image.commit)
    if not registered and not any(is_build_tag(tag) for tag in scan.image_tags):
        logger.info("scan ignored", ecr_repository=scan.ecr_repository, reason=REASON_NOT_REGISTERED)
        return Outcome("ignored", REASON_NOT_REGISTERED)
    report = read_report(scan, services)
    verdict = evaluate(image_config.scan, report, today)
    # Recorded before it is told: tag_image promotes only what the ledger holds.
    services.ledger.record_verdict(
        scan.ecr_repository, scan.image_digest, verdict.verdict, list(verdict.reasons), verdict.scanning
    )
    blocking = blocking_ids(image_config.scan, report, verdict)
    services.ledger.record_verdict_history(
        VerdictRecord(
            scan.ecr_repository,
            scan.image_digest,
            scan.time,
            verdict.verdict,
            verdict.scanning,
            verdict.reasons,
            blocking,
            len(blocking),
        )
    )
    if image is None or not image.commit:
        # ECR's push and scan events arrive in either order: tag_image tells this verdict when it
        # registers the build push (the verdict on the item is kept by the registration).
        logger.info("scan before registration", ecr_repository=scan.ecr_repository, verdict=verdict.verdict)
        return Outcome("decided", REASON_BEFORE_REGISTRATION, facts={"verdict": verdict.verdict})
    commit = image.commit
    pushes = services.ledger.pushes_of_commit(image_config.codecommit_repository, commit)
    uri = image.repository_uri or repository_uri(scan.account, scan.region, scan.ecr_repository)
    subject = Subject.of_image(
        pushes, image_config.codecommit_repository, commit, scan.ecr_repository, scan.image_digest, uri
    )
    trace_subject(subject)
    services.publisher.publish(
        ScanVerdict(
            subject, verdict, pushes=tuple(pushes), image_tags=tuple(scan.image_tags), scan_status=scan.scan_status
        )
    )
    logger.info("scan verdict", verdict=verdict.verdict, image_digest=scan.image_digest, reasons=list(verdict.reasons))
    return Outcome("decided", facts={"verdict": verdict.verdict, "reasons": list(verdict.reasons)})
