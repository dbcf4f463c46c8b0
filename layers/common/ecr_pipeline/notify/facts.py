"""The business fact each told event is about: the one key of notify's idempotency, per kind.

An event republished with a new id (a replay from the archive, a producer's retry after a lost
PutEvents answer) tells the same fact, so it is told once per channel. Each fact names what
happened to which push, image or deployment, and nothing an event's retry could change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ecr_pipeline.events.codebuild import BuildStateChange
from ecr_pipeline.events.pipeline import (
    BUILD_SKIPPED,
    BUILD_STARTED,
    DEPLOYMENT_FAILED,
    DEPLOYMENT_ROLLED_BACK,
    DEPLOYMENT_SKIPPED,
    DEPLOYMENT_STARTED,
    DEPLOYMENT_SUCCEEDED,
    IMAGE_PROMOTED,
    PROMOTION_FAILED,
    SCAN_VERDICT,
    Subject,
)

# A fact is kept in a DynamoDB sort key (the undelivered item) and an idempotency key: bounded.
FACT_LENGTH = 400


def _push(subject: Subject) -> str:
    """The push an event is about, else its repository and commit."""
    if subject.push is not None:
        return subject.push.push_id
    return f"{subject.repository}@{subject.commit or ''}"


def _image(subject: Subject) -> str:
    return f"{subject.ecr_repository}@{subject.image_digest or ''}"


# Per told detail-type: the fields of its strictly parsed record (events/pipeline.py) that make the fact.
PIPELINE_FACTS: Mapping[str, Callable[[Any], tuple[str, ...]]] = MappingProxyType(
    {
        BUILD_STARTED: lambda record: (record.build_id,),
        BUILD_SKIPPED: lambda record: (_push(record.subject), record.subject.ecr_repository, record.reason),
        SCAN_VERDICT: lambda record: (_image(record.subject), record.verdict.verdict),
        IMAGE_PROMOTED: lambda record: (
            _image(record.subject),
            *sorted(push.push_id for push in record.pushes),
        ),
        PROMOTION_FAILED: lambda record: (_image(record.subject), record.tag),
        DEPLOYMENT_STARTED: lambda record: (record.deployment_id,),
        DEPLOYMENT_SKIPPED: lambda record: (
            _image(record.subject),
            _push(record.subject),
            record.place.environment,
            record.reason,
        ),
        # One end per deployment: the detail-type (the fact's kind) tells which.
        DEPLOYMENT_SUCCEEDED: lambda record: (record.deployment_id,),
        DEPLOYMENT_FAILED: lambda record: (record.deployment_id,),
        DEPLOYMENT_ROLLED_BACK: lambda record: (record.deployment_id,),
    }
)


def _joined(kind: str, parts: tuple[str, ...]) -> str:
    fact = "#".join((kind, *parts))
    if len(fact) <= FACT_LENGTH:
        return fact
    # Many pushes, or a long reason: the kind stays readable, the rest is its digest.
    return f"{kind}#sha256:{hashlib.sha256(fact.encode('utf-8', 'surrogatepass')).hexdigest()}"


def pipeline_fact(detail_type: str, record: Any) -> str:
    """`Scan Verdict#demo-app@sha256:...#BLOCKED`: the fact of one of the pipeline's own told events."""
    return _joined(detail_type, PIPELINE_FACTS[detail_type](record))


def build_fact(change: BuildStateChange) -> str:
    return _joined("CodeBuild", (change.build_id, change.status))
