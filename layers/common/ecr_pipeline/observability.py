"""The one Logger and Metrics of the pipeline; every handler imports these.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets.
"""

from aws_lambda_powertools import Logger, Metrics

from ecr_pipeline.events.envelope import MalformedEvent

logger = Logger()
metrics = Metrics()


def reject_malformed(error: MalformedEvent, event_kind: str) -> dict[str, str]:
    """Log a malformed event with the field at fault and drop it: a redelivery would be just as malformed."""
    logger.error("event rejected", event_kind=event_kind, reason=str(error), field=error.field)
    metrics.add_metric(name="EventsRejected", unit="Count", value=1)
    return {"status": "rejected", "reason": str(error)}
