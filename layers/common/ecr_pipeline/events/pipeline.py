"""The pipeline's own events (source ecr-pipeline): the one home of their contract.

Each detail-type has a record here, and the record's annotated fields are its schema:
`to_detail(record)` is the only way a producer writes a detail, and `from_detail(Record, detail)`
reads one back strictly, naming the first bad field. `CONTRACT` maps every detail-type to its
record. docs/events.md is checked against the records by tests/unit/test_event_contract.py, which
also round-trips every record through notify's lenient reading (notify/readers.py).

The common fields (the push, or only the repository and commit for an image no push is recorded
for, and the image) are a `Subject` (events/subject.py); deployments add a `Place`, and their records
are in events/deployment_records.py. Field kinds are read by the
annotation's text, so a new field of a new kind fails the contract test until it has a reader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ecr_pipeline.core.naming import commit_of_build_tag
from ecr_pipeline.core.scan_policy import VERDICTS, Verdict
from ecr_pipeline.events.deployment_records import (
    DeploymentFailed,
    DeploymentQueued,
    DeploymentRolledBack,
    DeploymentSkipped,
    DeploymentStarted,
    DeploymentSucceeded,
)
from ecr_pipeline.events.envelope import (
    MalformedEvent,
    counts,
    optional,
    optional_str,
    optional_string_map,
    parse_envelope,
    require_int,
    require_list,
    require_mapping,
    require_str,
    require_time,
    strings,
)
from ecr_pipeline.events.subject import Detail, Place, Subject, place_from_detail
from ecr_pipeline.notify.model import Finding
from ecr_pipeline.records import PushRecord
from ecr_pipeline.text import commit_line, cut, only_text, person

BUILD_STARTED = "Build Started"
BUILD_SKIPPED = "Build Skipped"
PROMOTION_REQUESTED = "Promotion Requested"
IMAGE_REGISTERED = "Image Registered"
SCAN_VERDICT = "Scan Verdict"
IMAGE_PROMOTED = "Image Promoted"
PROMOTION_FAILED = "Promotion Failed"
DEPLOYMENT_STARTED = "Deployment Started"
DEPLOYMENT_SKIPPED = "Deployment Skipped"
DEPLOYMENT_QUEUED = "Deployment Queued"
DEPLOYMENT_SUCCEEDED = "Deployment Succeeded"
DEPLOYMENT_FAILED = "Deployment Failed"
DEPLOYMENT_ROLLED_BACK = "Deployment Rolled Back"

# Bounds of what a verdict carries: scan_check writes 5 top findings; a finding field is short text.
_MAX_LISTED = 100
_FIELD_LIMIT = 1000


# --- the records, in the order a push meets them -----------------------------------------------


class BuildStarted(NamedTuple):
    subject: Subject
    build_id: str
    project: str
    superseded_build_id: str | None = None  # a build this push stopped


class BuildSkipped(NamedTuple):
    subject: Subject
    reason: str
    changed_files: int | None = None  # how many files the push changed, when path filters decided
    build_id: str | None = None  # a build this push started and then stopped for a newer one


class PromotionRequested(NamedTuple):
    """The commit's image exists already: no build; tag_image promotes it once its verdict is PASSED."""

    subject: Subject  # with the push and the image's digest
    reason: str


class ImageRegistered(NamedTuple):
    subject: Subject
    pushes: tuple[PushRecord, ...]  # every ref recorded for the commit
    pushed_at: str  # the ECR push
    scan: str  # what was done to get a scan


class ScanVerdict(NamedTuple):
    subject: Subject
    verdict: Verdict  # written out as verdict, reasons, scanning, counts, raw_counts, top_findings, allowlisted
    pushes: tuple[PushRecord, ...] = ()
    image_tags: tuple[str, ...] = ()  # the image's tags, as the scan event named them
    scan_status: str = ""


class ImagePromoted(NamedTuple):
    subject: Subject  # with the commit and the repository URI
    pushes: tuple[PushRecord, ...]  # the refs this promotion is for
    tags: tuple[str, ...]  # on the image now, by this promotion
    tags_added: tuple[str, ...] = ()
    superseded_tags: tuple[str, ...] = ()  # held by a newer push, left alone
    failed_tags: tuple[str, ...] = ()
    verdict_reasons: tuple[str, ...] = ()


class PromotionFailed(NamedTuple):
    subject: Subject
    tag: str
    reason: str
    holder_digest: str | None = None  # the image the immutable tag is on


Record = (
    BuildStarted
    | BuildSkipped
    | PromotionRequested
    | ImageRegistered
    | ScanVerdict
    | ImagePromoted
    | PromotionFailed
    | DeploymentStarted
    | DeploymentSkipped
    | DeploymentQueued
    | DeploymentSucceeded
    | DeploymentFailed
    | DeploymentRolledBack
)

CONTRACT: Mapping[str, type[Record]] = MappingProxyType(
    {
        BUILD_STARTED: BuildStarted,
        BUILD_SKIPPED: BuildSkipped,
        PROMOTION_REQUESTED: PromotionRequested,
        IMAGE_REGISTERED: ImageRegistered,
        SCAN_VERDICT: ScanVerdict,
        IMAGE_PROMOTED: ImagePromoted,
        PROMOTION_FAILED: PromotionFailed,
        DEPLOYMENT_STARTED: DeploymentStarted,
        DEPLOYMENT_SKIPPED: DeploymentSkipped,
        DEPLOYMENT_QUEUED: DeploymentQueued,
        DEPLOYMENT_SUCCEEDED: DeploymentSucceeded,
        DEPLOYMENT_FAILED: DeploymentFailed,
        DEPLOYMENT_ROLLED_BACK: DeploymentRolledBack,
    }
)
_DETAIL_TYPES: Mapping[type, str] = {kind: detail_type for detail_type, kind in CONTRACT.items()}
# Subject fields a record's consumers rely on, beyond the repository and ECR repository.
_SUBJECT_NEEDS: Mapping[type, tuple[str, ...]] = MappingProxyType(
    {
        BuildStarted: (),
        BuildSkipped: (),
        PromotionRequested: ("push", "image_digest"),
        ImagePromoted: ("commit", "image_digest", "repository_uri"),
    }
)


def detail_type(record: Record) -> str:
    return _DETAIL_TYPES[type(record)]


def to_detail(record: Record) -> Detail:
    """The detail of a record: its subject's common fields, then its place, then its own fields."""
    detail: Detail = {}
    for key, value in zip(record._fields, record, strict=True):
        if isinstance(value, Subject):
            detail.update(value.to_detail())
        elif isinstance(value, Place):
            detail.update(value._asdict())
        elif isinstance(value, Verdict):
            detail.update(value.as_detail())
        elif isinstance(value, tuple):
            detail[key] = [item.as_detail() if isinstance(item, PushRecord) else item for item in value]
        elif isinstance(value, Mapping):
            detail[key] = dict(value)
        else:
            detail[key] = value
    return detail


# --- strict reading ---------------------------------------------------------------------------


def push_from_detail(detail: Mapping[str, Any], prefix: str) -> PushRecord:
    fields = dict(detail)
    ref_type = require_str(fields, "ref_type", prefix)
    if ref_type not in ("branch", "tag"):
        raise MalformedEvent(f"{prefix}.ref_type", f"must be branch or tag, got {ref_type!r}")
    return PushRecord(
        repository=require_str(fields, "repository", prefix),
        ref_type=ref_type,
        ref_name=require_str(fields, "ref", prefix),
        commit=require_str(fields, "commit", prefix),
        push_time=require_time(fields, "push_time", prefix),
        push_id=require_str(fields, "push_id", prefix),
        author=person(only_text(fields.get("author"))),
        message=commit_line(only_text(fields.get("message"))),
    )


def _subject(fields: Detail, needs: tuple[str, ...]) -> Subject:
    push = push_from_detail(fields, "detail") if "ref_type" in fields or "push" in needs else None
    commit = push.commit if push else optional_str(fields, "commit", "detail")
    image_tag = optional_str(fields, "image_tag", "detail")
    if image_tag is not None and commit_of_build_tag(image_tag) != commit:
        raise MalformedEvent("detail.image_tag", f"must be the build tag of the commit, got {image_tag!r}")
    if commit is None and "commit" in needs:
        raise MalformedEvent("detail.commit", "is missing")
    return Subject(
        repository=require_str(fields, "repository", "detail"),
        commit=commit,
        ecr_repository=require_str(fields, "ecr_repository", "detail"),
        push=push,
        image_digest=(require_str if "image_digest" in needs else optional_str)(fields, "image_digest", "detail"),
        repository_uri=(require_str if "repository_uri" in needs else optional_str)(fields, "repository_uri", "detail"),
    )


def _verdict(fields: Detail) -> Verdict:
    verdict = require_str(fields, "verdict", "detail")
    if verdict not in VERDICTS:
        raise MalformedEvent("detail.verdict", f"must be PASSED or BLOCKED, got {verdict!r}")
    findings = []
    listed = fields.get("top_findings") or []
    if not isinstance(listed, list) or len(listed) > _MAX_LISTED:
        raise MalformedEvent("detail.top_findings", f"must be a list of at most {_MAX_LISTED} findings")
    for index, raw in enumerate(listed):
        finding = require_mapping(raw, f"detail.top_findings[{index}]")
        found = {key: cut(only_text(finding.get(key)), _FIELD_LIMIT) for key in Finding._fields}
        findings.append(Finding(**{**found, "id": require_str(finding, "id", f"detail.top_findings[{index}]")}))
    allowlisted = fields.get("allowlisted") or []
    if not isinstance(allowlisted, list) or not all(isinstance(entry, dict) for entry in allowlisted):
        raise MalformedEvent("detail.allowlisted", "must be a list of objects")
    if len(allowlisted) > _MAX_LISTED:
        raise MalformedEvent("detail.allowlisted", f"must list at most {_MAX_LISTED} entries")
    return Verdict(
        verdict=verdict,
        reasons=strings(fields, "reasons"),
        scanning=str(fields.get("scanning") or ""),
        counts=counts(fields, "counts"),
        raw_counts=counts(fields, "raw_counts"),
        top_findings=tuple(findings),
        allowlisted=tuple(
            {str(k): cut(only_text(v), _FIELD_LIMIT) for k, v in entry.items()} for entry in allowlisted[:_MAX_LISTED]
        ),
    )


def _pushes(fields: Detail, key: str) -> tuple[PushRecord, ...]:
    return tuple(
        push_from_detail(require_mapping(raw, f"detail.{key}[{index}]"), f"detail.{key}[{index}]")
        for index, raw in enumerate(require_list(fields, key, "detail"))
    )


# Readers by the annotation's text: (fields, key) -> value.
_READERS: Mapping[str, Callable[[Detail, str], Any]] = MappingProxyType(
    {
        "str": lambda fields, key: require_str(fields, key, "detail"),
        "str | None": lambda fields, key: optional_str(fields, key, "detail"),
        "int": require_int,
        "int | None": optional(require_int),
        "tuple[str, ...]": strings,
        "tuple[PushRecord, ...]": _pushes,
        "Place": lambda fields, _key: place_from_detail(fields),
        "Verdict": lambda fields, _key: _verdict(fields),
        "Mapping[str, str | None] | None": optional_string_map,
    }
)
_TIMES = frozenset({"pushed_at"})


def from_detail[R: Record](record_type: type[R], detail: Mapping[str, Any]) -> R:
    """Read a record strictly: every field its annotation says, defaults only where it has one."""
    fields = dict(detail)
    needs = _SUBJECT_NEEDS.get(record_type, ("image_digest",))
    values: dict[str, Any] = {}
    for key, declared in record_type.__annotations__.items():
        annotation = str(getattr(declared, "__forward_arg__", declared))  # NamedTuple keeps the text as a ForwardRef
        if annotation == "Subject":
            values[key] = _subject(fields, needs)
        elif key in record_type._field_defaults and fields.get(key) in (None, ""):
            continue
        elif key in _TIMES:
            values[key] = require_time(fields, key, "detail")
        else:
            values[key] = _READERS[annotation](fields, key)
    return record_type(**values)


class Received[R](NamedTuple):
    """A pipeline event as a consumer gets it: the envelope fields it uses and the record."""

    event_id: str
    region: str
    account: str
    record: R


def parse_pipeline_event[R: Record](event: object, record_type: type[R]) -> Received[R]:
    """The record of a pipeline event of the given type; MalformedEvent names the first bad field."""
    envelope = parse_envelope(event)
    expected = _DETAIL_TYPES[record_type]
    if envelope.detail_type != expected:
        raise MalformedEvent("detail-type", f"must be {expected!r}, got {envelope.detail_type!r}")
    return Received(envelope.event_id, envelope.region, envelope.account, from_detail(record_type, envelope.detail))
