"""ECR build push -> registered image; "Scan Verdict" / "Promotion Requested" -> promotion tags
(see ecr_pipeline.core.tag_image)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_pipeline.adapters.ecr import Ecr
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.tag_image import (
    TagImageEvent,
    TagServices,
    handle,
    idempotency_fact,
    parse_tag_image_event,
    skip_reason,
)
from ecr_pipeline.core.tagging import REASON_NOT_BUILD_TAG
from ecr_pipeline.core.trust import Home
from ecr_pipeline.events.ecr import ImageAction
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.idempotency import idempotency_config, persistence_layer
from ecr_pipeline.observability import begin, count_outcome, logger, metrics, reject_malformed, trace, trace_subject
from ecr_pipeline.outcomes import Outcome
from ecr_pipeline.settings import load_pipeline_config, load_settings

settings = load_settings("ledger_table", "idempotency_table", "account")
home = Home(settings.account, settings.region)
config = load_pipeline_config(settings.config_path, settings.ecr_repository_prefix)
services = TagServices(
    ecr=Ecr(),
    ledger=Ledger(settings.ledger_table),
    publisher=EventPublisher(settings.event_source, settings.event_bus_name, stack=settings.stack_name),
)
# Keyed on the business fact (digest and tag; digest and verdict; digest and push): a redelivery
# and a second event stating the same fact both act once.
idempotency = idempotency_config()


@idempotent_function(
    data_keyword_argument="fact", persistence_store=persistence_layer(settings.idempotency_table), config=idempotency
)
def process(fact: dict[str, Any], message: TagImageEvent) -> dict[str, Any]:
    outcome = handle(message, config, services)
    count_outcome("TagImage", outcome.status, repository=configured_repository(message))
    if outcome.status == "promoted":
        logger.info("image promoted", added=outcome.facts.get("added"), already=outcome.facts.get("already"))
    return outcome.as_result()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin(event)
    try:
        message = parse_tag_image_event(event)
        home.check_origin(message.account, message.region)
    except MalformedEvent as error:
        return reject_malformed(error, "image")
    if isinstance(message, ImageAction):
        trace(image_digest=message.image_digest)
    else:
        trace_subject(message.record.subject)
    reason = skip_reason(message, config)
    if reason:
        # Retags come back as PUSH events: dropping them here is what keeps tagging from looping. The
        # echo of the pipeline's own retag is logged at debug: naming its push would cost a ledger read.
        log = logger.debug if reason == REASON_NOT_BUILD_TAG else logger.info
        log("event ignored", detail_type=event.get("detail-type"), reason=reason)
        outcome = Outcome("ignored", reason)
        count_outcome("Events", outcome.status)
        return outcome.as_result()
    idempotency.register_lambda_context(context)
    return process(fact=idempotency_fact(message), message=message)


def configured_repository(message: TagImageEvent) -> str | None:
    """The ECR repository of the event when pipeline.yaml names it: the metric dimension stays bounded."""
    name = message.ecr_repository if isinstance(message, ImageAction) else message.record.subject.ecr_repository
    return name if config.image(name) is not None else None
