"""The one Logger and Metrics of the pipeline; every handler imports these.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets.

Tracing: every log line of an invocation names the push it is about (`push_id`, and `repository`
(CodeCommit), `commit`, `image_digest` when known), and the push id is the correlation id, so one
Logs Insights filter follows a push across the functions (docs/operations.md). A handler calls
`begin(event)` first; the code that learns the push (from the detail of the pipeline's own events,
or from the ledger's BUILD, IMAGE or ENV record) calls `trace`. The handlers' decorator
`inject_lambda_context(clear_state=True)` drops the keys of the previous invocation of a warm worker.

Metrics: outcome counts carry dimensions where they mean something and are bounded: `repository`
(an ECR repository of pipeline.yaml), `environment`, `channel`; never a commit, ref, digest or push
id (each distinct set of dimension values is a billed custom metric).
"""

from __future__ import annotations

import re
import warnings
from typing import Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.outcomes import Outcome, Untrusted
from ecr_pipeline.records import PushRecord

logger = Logger()
metrics = Metrics()
# Counts with dimensions are flushed at once (count): an invocation can end with an empty shared set,
# and Powertools' warning about it would be a line of plain text among the JSON log lines.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# The longest event id put on a log line (EventBridge's are 36-character UUIDs).
MAX_CORRELATION_ID = 128
# The longest traced value: a push id is an event id, the ref type and a ref name (git allows long
# names); a longer value is left off the line rather than cut, so no key ever names a wrong push.
MAX_TRACE_VALUE = 512
TRACE_KEYS = ("push_id", "repository", "commit", "image_digest")


def _loggable(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def begin(event: object) -> None:
    """The start of an invocation: its lines carry the event's id (`event_id`) when that is a short
    string; a hostile id (nested, huge) is never put on a log line. No push is known yet."""
    event_id = event.get("id") if isinstance(event, dict) else None
    logger.append_keys(event_id=event_id if _loggable(event_id, MAX_CORRELATION_ID) else None)


def trace(
    *,
    push_id: str | None = None,
    repository: str | None = None,
    commit: str | None = None,
    image_digest: str | None = None,
) -> None:
    """From now on every log line of this invocation carries these keys; a key not given (or not a
    short string) keeps what was traced before. The push id is also the correlation id."""
    given = {"push_id": push_id, "repository": repository, "commit": commit, "image_digest": image_digest}
    keys = {name: value for name, value in given.items() if _loggable(value, MAX_TRACE_VALUE)}
    if "push_id" in keys:
        keys["correlation_id"] = keys["push_id"]
    if keys:
        logger.append_keys(**keys)


class Traceable(Protocol):
    """What a pipeline event is about (events/subject.py's Subject): the push, when known, and the image."""

    @property
    def repository(self) -> str: ...

    @property
    def commit(self) -> str | None: ...

    @property
    def image_digest(self) -> str | None: ...

    @property
    def push(self) -> PushRecord | None: ...


def trace_push(push: PushRecord | None, image_digest: str | None = None) -> None:
    if push is not None:
        trace(push_id=push.push_id, repository=push.repository, commit=push.commit, image_digest=image_digest)
    elif image_digest is not None:
        trace(image_digest=image_digest)


def trace_subject(subject: Traceable) -> None:
    """The push and image an event of the pipeline's is about (the newest push, for an image event)."""
    trace(repository=subject.repository, commit=subject.commit)
    trace_push(subject.push, subject.image_digest)


def untrace() -> None:
    """Forget the traced push: the next item of a batch is about another one."""
    logger.remove_keys([*TRACE_KEYS, "correlation_id"])


def traced() -> dict[str, str]:
    """The trace keys the log lines carry now (for tests and for code that passes the push on)."""
    current = logger.get_current_keys()
    return {name: str(current[name]) for name in TRACE_KEYS if current.get(name) is not None}


def metric_name(kind: str, status: str) -> str:
    """One naming scheme for outcome counts: ("Deployments", "already deployed") -> DeploymentsAlreadyDeployed."""
    return kind + "".join(part.capitalize() for part in re.split(r"[\s_-]+", status) if part)


def count(name: str, **dimensions: str | None) -> None:
    """One count of `name`. Without dimensions it joins the invocation's metric set (flushed by
    `log_metrics`, dimension `service`); with dimensions it is flushed at once in its own EMF entry,
    because the shared set has one set of dimensions for all its metrics and one invocation counts
    for several channels or environments. A dimension given as None or "" is left out."""
    chosen = {key: value for key, value in dimensions.items() if value}
    if not chosen:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        for key, value in sorted(chosen.items()):
            metric.add_dimension(name=key, value=value)


def count_outcome(kind: str, status: str, **dimensions: str | None) -> None:
    count(metric_name(kind, status), **dimensions)


def reject_malformed(error: MalformedEvent, event_kind: str) -> dict[str, str]:
    """Log a malformed or untrusted event with the field at fault and drop it: a redelivery would be
    just as malformed. Untrusted events (core/trust.py) are counted apart, as EventsUntrusted."""
    logger.error("event rejected", event_kind=event_kind, reason=str(error), field=error.field)
    count("EventsUntrusted" if isinstance(error, Untrusted) else "EventsRejected")
    return Outcome("rejected", str(error), facts={"field": error.field}).as_result()
