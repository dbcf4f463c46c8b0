"""The one Logger and Metrics of the pipeline; every handler imports these.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets.
"""

import re

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.outcomes import Outcome

logger = Logger()
metrics = Metrics()

# Every handler logs with the id of the event it was given as its correlation id.
CORRELATION_ID_PATH = correlation_paths.EVENT_BRIDGE


def metric_name(kind: str, status: str) -> str:
    """One naming scheme for outcome counts: ("Deployments", "already deployed") -> DeploymentsAlreadyDeployed."""
    return kind + "".join(part.capitalize() for part in re.split(r"[\s_-]+", status) if part)


def count_outcome(kind: str, status: str) -> None:
    metrics.add_metric(name=metric_name(kind, status), unit="Count", value=1)


def reject_malformed(error: MalformedEvent, event_kind: str) -> dict[str, str]:
    """Log a malformed event with the field at fault and drop it: a redelivery would be just as malformed."""
    logger.error("event rejected", event_kind=event_kind, reason=str(error), field=error.field)
    metrics.add_metric(name="EventsRejected", unit="Count", value=1)
    return Outcome("rejected", str(error), facts={"field": error.field}).as_result()
