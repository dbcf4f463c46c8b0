"""CodeCommit push -> CodeBuild image builds, and the end of a branch's quiet window (the window
queue's delayed messages) -> the builds it waited for (see ecr_pipeline.core.start_build)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_pipeline.adapters.codebuild import CodeBuild
from ecr_pipeline.adapters.codecommit import CodeCommit
from ecr_pipeline.adapters.delayed_queue import DelayedQueue
from ecr_pipeline.adapters.ecr import Ecr
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.build_window import SettleRequest, is_settle_batch, parse_settle_record
from ecr_pipeline.core.start_build import BuildServices, handle_push, settle
from ecr_pipeline.core.trust import Home
from ecr_pipeline.events.codecommit import RefChange, parse_push_event
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.idempotency import idempotency_config, persistence_layer
from ecr_pipeline.observability import begin, count_outcome, logger, metrics, reject_malformed, trace, untrace
from ecr_pipeline.outcomes import Outcome, PushStatus, SettleStatus
from ecr_pipeline.settings import load_pipeline_config, load_settings

settings = load_settings("ledger_table", "idempotency_table", "codebuild_project", "account")
home = Home(settings.account, settings.region)
config = load_pipeline_config(settings.config_path, settings.ecr_repository_prefix)
services = BuildServices(
    codecommit=CodeCommit(),
    codebuild=CodeBuild(),
    ecr=Ecr(),
    ledger=Ledger(settings.ledger_table),
    publisher=EventPublisher(settings.event_source, settings.event_bus_name, stack=settings.stack_name),
    project=settings.codebuild_project,
    window_queue=DelayedQueue(settings.build_window_queue_url) if settings.build_window_queue_url else None,
)
# Keyed on the pushes the delivery carries (event id, ref, commit): a redelivered push acts once.
idempotency = idempotency_config()


@idempotent_function(
    data_keyword_argument="fact", persistence_store=persistence_layer(settings.idempotency_table), config=idempotency
)
def process(fact: dict[str, Any], changes: list[RefChange]) -> dict[str, Any]:
    results = []
    for change in changes:
        untrace()
        trace(push_id=change.push_id, repository=change.repository, commit=change.commit_id)
        outcome = handle_push(change, config, services)
        if outcome.ignored_reason:
            logger.info(
                "push ignored", repository=change.repository, ref=change.ref_name, reason=outcome.ignored_reason
            )
            count_outcome("Pushes", outcome.status)
        for image in outcome.images:
            logger.info(
                "image handled",
                action=image.action,
                repository=change.repository,
                ref=change.ref_name,
                commit=change.commit_id,
                ecr_repository=image.ecr_repository,
                build_id=image.build_id,
                reason=image.reason,
            )
            count_outcome("Builds", image.action, repository=image.ecr_repository)
        results.append(outcome.result())
    # A delivery whose every push was ignored did nothing: it says so, and its reasons say why.
    status: PushStatus = "handled" if any(result.status == "handled" for result in results) else "ignored"
    return Outcome(status, facts={"pushes": [result.as_result() for result in results]}).as_result()


@idempotent_function(
    data_keyword_argument="fact", persistence_store=persistence_layer(settings.idempotency_table), config=idempotency
)
def process_settle(fact: dict[str, Any], request: SettleRequest) -> dict[str, Any]:
    outcome: Outcome[SettleStatus] = settle(request, config, home, services)
    trace(commit=outcome.facts.get("commit"))
    logger.info("branch settled", status=outcome.status, reason=outcome.reason, **outcome.facts)
    count_outcome("Settles", outcome.status)
    for image in outcome.facts.get("images", ()):
        count_outcome("Builds", image["action"], repository=image.get("ecr_repository"))
    return outcome.as_result()


def handle_settle_batch(records: list[Any], context: LambdaContext) -> dict[str, Any]:
    """The window queue's batch: each message settled on its own. A malformed one is logged with
    its reason and dropped (only the pipeline sends to the queue); one that fails is reported back
    to SQS (ReportBatchItemFailures) and received again; the others are done."""
    idempotency.register_lambda_context(context)
    results: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    for index, raw in enumerate(records):
        untrace()
        try:
            request = parse_settle_record(raw, index)
            home.check_origin(request.account, request.region, f"Records[{index}].eventSourceARN")
        except MalformedEvent as error:
            results.append(reject_malformed(error, "settle"))
            continue
        trace(push_id=request.push_id, repository=request.repository)
        try:
            fact = {"fact": "build settle", "repository": request.repository, "branch": request.branch}
            results.append(process_settle(fact={**fact, "push_id": request.push_id}, request=request))
        except Exception:
            logger.exception("settle failed; the message is received again", message_id=request.message_id)
            failures.append({"itemIdentifier": request.message_id})
    facts = {"settles": results, "batchItemFailures": failures}
    effects = {result.get("effect") for result in results}
    if results and effects == {"rejected"}:
        # Every message was rejected: so is the batch, naming the first one's field.
        first = results[0]
        return Outcome("rejected", first.get("reason"), facts={"field": first.get("field"), **facts}).as_result()
    # Acted when any message acted (or failed, to be received again); otherwise ignored.
    status: PushStatus = "handled" if "acted" in effects or not results else "ignored"
    return Outcome(status, facts=facts).as_result()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin(event)
    if is_settle_batch(event):
        return handle_settle_batch(event["Records"], context)
    try:
        changes = parse_push_event(event)
        for change in changes:
            home.check_origin(change.account, change.region)
    except MalformedEvent as error:
        return reject_malformed(error, "push")
    idempotency.register_lambda_context(context)
    return process(fact=push_fact(changes), changes=changes)


def push_fact(changes: list[RefChange]) -> dict[str, Any]:
    """What makes a delivery the same delivery: its pushes, each by event id, ref and commit."""
    return {"pushes": [[change.event_id, change.ref_type, change.ref_name, change.commit_id] for change in changes]}
