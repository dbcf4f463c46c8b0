"""The one Logger and Metrics of the pipeline; every handler imports these.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets.
"""

import re

from aws_lambda_powertools import Logger, Metrics

from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.outcomes import Outcome, Untrusted

logger = Logger()
metrics = Metrics()

# The longest event id taken as a correlation id (EventBridge's are 36-character UUIDs).
MAX_CORRELATION_ID = 128


def correlate(event: object) -> None:
    """Every log line of a handler carries the id of the event it was given, when that is a short
    string; a hostile id (nested, huge) is never put on a log line, so it cannot break one."""
    event_id = event.get("id") if isinstance(event, dict) else None
    usable = isinstance(event_id, str) and 0 < len(event_id) <= MAX_CORRELATION_ID
    logger.set_correlation_id(event_id if usable else None)


def metric_name(kind: str, status: str) -> str:
    """One naming scheme for outcome counts: ("Deployments", "already deployed") -> DeploymentsAlreadyDeployed."""
    return kind + "".join(part.capitalize() for part in re.split(r"[\s_-]+", status) if part)


def count_outcome(kind: str, status: str) -> None:
    metrics.add_metric(name=metric_name(kind, status), unit="Count", value=1)


def reject_malformed(error: MalformedEvent, event_kind: str) -> dict[str, str]:
    """Log a malformed or untrusted event with the field at fault and drop it: a redelivery would be
    just as malformed. Untrusted events (core/trust.py) are counted apart, as EventsUntrusted."""
    logger.error("event rejected", event_kind=event_kind, reason=str(error), field=error.field)
    metrics.add_metric(
        name="EventsUntrusted" if isinstance(error, Untrusted) else "EventsRejected", unit="Count", value=1
    )
    return Outcome("rejected", str(error), facts={"field": error.field}).as_result()
