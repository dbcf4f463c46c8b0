"""ECR basic / Inspector enhanced scan result -> "Scan Verdict" (see ecr_pipeline.core.scan_check)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_pipeline.adapters.ecr import Ecr
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.scan_check import ScanServices, check_scan, idempotency_fact
from ecr_pipeline.core.trust import Home
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.events.scan import ScanEvent, parse_scan_event
from ecr_pipeline.idempotency import idempotency_config, persistence_layer
from ecr_pipeline.observability import begin, count_outcome, logger, metrics, reject_malformed, trace
from ecr_pipeline.settings import load_pipeline_config, load_settings

settings = load_settings("ledger_table", "idempotency_table", "account")
home = Home(settings.account, settings.region)
config = load_pipeline_config(settings.config_path, settings.ecr_repository_prefix)
services = ScanServices(
    ecr=Ecr(),
    ledger=Ledger(settings.ledger_table),
    publisher=EventPublisher(settings.event_source, settings.event_bus_name, stack=settings.stack_name),
)
# Keyed on the scan outcome for the digest: a redelivery or a second identical scan event acts once.
idempotency = idempotency_config()


@idempotent_function(
    data_keyword_argument="fact", persistence_store=persistence_layer(settings.idempotency_table), config=idempotency
)
def process(fact: dict[str, Any], scan: ScanEvent) -> dict[str, Any]:
    outcome = check_scan(scan, config, services, today=dt.datetime.now(dt.UTC).date())
    if "verdict" in outcome.facts:
        # A verdict is reached only for a repository of pipeline.yaml: the dimension is bounded.
        count_outcome("Verdict", str(outcome.facts["verdict"]), repository=scan.ecr_repository)
    return outcome.as_result()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin(event)
    try:
        scan = parse_scan_event(event)
        home.check_origin(scan.account, scan.region)
    except MalformedEvent as error:
        return reject_malformed(error, "scan")
    trace(image_digest=scan.image_digest)
    idempotency.register_lambda_context(context)
    return process(fact=idempotency_fact(scan), scan=scan)
