"""CodeCommit pushes, from either event shape, as `RefChange` objects.

- EventBridge "CodeCommit Repository State Change" (source aws.codecommit): one ref per event.
- The older repository trigger (`{"Records": [{"eventSource": "aws:codecommit", ...}]}`): several
  records, each with several references; it carries no old commit id.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from ecr_pipeline.events.envelope import (
    MalformedEvent,
    optional_str,
    parse_envelope,
    require_list,
    require_mapping,
    require_str,
    require_time,
)

RefType = Literal["branch", "tag"]
STATE_CHANGE = "CodeCommit Repository State Change"


class RefChange(NamedTuple):
    """One reference that moved in one push."""

    event_id: str
    push_time: str  # ISO 8601 UTC, the event's time: the order of pushes
    region: str
    account: str
    repository: str
    action: str  # referenceCreated | referenceUpdated | referenceDeleted | unreferencedMergeCommitCreated
    ref_type: RefType
    ref_name: str  # branch or tag name, without refs/heads/ or refs/tags/
    commit_id: str | None
    old_commit_id: str | None

    @property
    def is_branch(self) -> bool:
        return self.ref_type == "branch"

    @property
    def push_id(self) -> str:
        """Identifies this push of this ref; also the tie-break between equal push times."""
        return f"{self.event_id}#{self.ref_type}#{self.ref_name}"


def _ref_from_full_name(full_name: str, field: str) -> tuple[RefType, str]:
    for prefix, ref_type in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if full_name.startswith(prefix) and len(full_name) > len(prefix):
            return ref_type, full_name[len(prefix) :]  # type: ignore[return-value]
    raise MalformedEvent(field, f"must start with refs/heads/ or refs/tags/, got {full_name!r}")


def _from_state_change(event: dict[str, Any]) -> list[RefChange]:
    envelope = parse_envelope(event)
    detail = envelope.detail
    action = require_str(detail, "event", "detail")
    commit_id = optional_str(detail, "commitId", "detail")
    # A merge-commit event carries no reference: nothing to build, but a well-formed event.
    merge_commit = action == "unreferencedMergeCommitCreated"
    ref_type = "branch" if merge_commit else require_str(detail, "referenceType", "detail")
    if ref_type not in ("branch", "tag"):
        raise MalformedEvent("detail.referenceType", f"must be branch or tag, got {ref_type!r}")
    if not merge_commit and action != "referenceDeleted" and commit_id is None:
        raise MalformedEvent("detail.commitId", "is missing")
    return [
        RefChange(
            event_id=envelope.event_id,
            push_time=envelope.time,
            region=envelope.region,
            account=envelope.account,
            repository=require_str(detail, "repositoryName", "detail"),
            action=action,
            ref_type=ref_type,  # type: ignore[arg-type]
            ref_name="" if merge_commit else require_str(detail, "referenceName", "detail"),
            commit_id=commit_id,
            old_commit_id=None if merge_commit else optional_str(detail, "oldCommitId", "detail"),
        )
    ]


def _from_trigger(event: dict[str, Any]) -> list[RefChange]:
    changes = []
    for index, raw_record in enumerate(require_list(event, "Records", "")):
        prefix = f"Records[{index}]"
        record = require_mapping(raw_record, prefix)
        source_arn = require_str(record, "eventSourceARN", prefix)
        arn_parts = source_arn.split(":")
        if len(arn_parts) != 6 or arn_parts[2] != "codecommit":
            raise MalformedEvent(f"{prefix}.eventSourceARN", f"is not a CodeCommit repository ARN: {source_arn!r}")
        codecommit = require_mapping(record.get("codecommit"), f"{prefix}.codecommit")
        for ref_index, raw_ref in enumerate(require_list(codecommit, "references", f"{prefix}.codecommit")):
            ref_prefix = f"{prefix}.codecommit.references[{ref_index}]"
            reference = require_mapping(raw_ref, ref_prefix)
            ref_type, ref_name = _ref_from_full_name(require_str(reference, "ref", ref_prefix), f"{ref_prefix}.ref")
            deleted = reference.get("deleted") is True
            commit_id = require_str(reference, "commit", ref_prefix)
            changes.append(
                RefChange(
                    event_id=f"{require_str(record, 'eventId', prefix)}#{ref_index}",
                    push_time=require_time(record, "eventTime", prefix),
                    region=arn_parts[3],
                    account=arn_parts[4],
                    repository=arn_parts[5],
                    action="referenceDeleted"
                    if deleted
                    else ("referenceCreated" if reference.get("created") is True else "referenceUpdated"),
                    ref_type=ref_type,
                    ref_name=ref_name,
                    commit_id=None if deleted else commit_id,
                    old_commit_id=commit_id if deleted else None,
                )
            )
    return changes


def parse_push_event(event: Any) -> list[RefChange]:
    """Every ref change an event carries; MalformedEvent names the first bad field."""
    body = require_mapping(event, "event")
    if "Records" in body:
        return _from_trigger(body)
    detail_type = body.get("detail-type")
    if detail_type != STATE_CHANGE:
        raise MalformedEvent("detail-type", f"must be {STATE_CHANGE!r}, got {detail_type!r}")
    return _from_state_change(body)
