"""CodeCommit pushes, from either event shape, as `RefChange` objects.

- EventBridge "CodeCommit Repository State Change" (source aws.codecommit): one ref per event.
- The older repository trigger (`{"Records": [{"eventSource": "aws:codecommit", ...}]}`): several
  records, each with several references; it carries no old commit id.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from ecr_pipeline.events.envelope import (
    CODECOMMIT_REPOSITORY,
    COMMIT_ID,
    REGION,
    MalformedEvent,
    check_arn,
    check_depth,
    check_ref_name,
    parse_envelope,
    require_list,
    require_mapping,
    require_match,
    require_str,
    require_time,
)

RefType = Literal["branch", "tag"]
STATE_CHANGE = "CodeCommit Repository State Change"
ACTIONS = ("referenceCreated", "referenceUpdated", "referenceDeleted", "unreferencedMergeCommitCreated")


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


_COMMIT = "a 40-character lowercase hex commit id"
_REPOSITORY = "a CodeCommit repository name (1 to 100 of letters, digits, _ . -)"
# A delivery of the repository trigger carries at most this many refs (CodeCommit sends one push
# per record): a bound on what one invocation does, not a rule of CodeCommit's.
MAX_REFS = 100


def _commit(container: dict[str, Any], key: str, prefix: str) -> str | None:
    if container.get(key) is None:
        return None
    return require_match(container, key, prefix, COMMIT_ID, _COMMIT)


def _ref_from_full_name(full_name: str, field: str) -> tuple[RefType, str]:
    for prefix, ref_type in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if full_name.startswith(prefix) and len(full_name) > len(prefix):
            return ref_type, check_ref_name(full_name[len(prefix) :], field)  # type: ignore[return-value]
    raise MalformedEvent(field, f"must start with refs/heads/ or refs/tags/, got {full_name[:80]!r}")


def _from_state_change(event: dict[str, Any]) -> list[RefChange]:
    envelope = parse_envelope(event)
    detail = envelope.detail
    action = require_str(detail, "event", "detail")
    if action not in ACTIONS:
        raise MalformedEvent("detail.event", f"must be one of {', '.join(ACTIONS)}, got {action[:80]!r}")
    commit_id = _commit(detail, "commitId", "detail")
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
            repository=require_match(detail, "repositoryName", "detail", CODECOMMIT_REPOSITORY, _REPOSITORY),
            action=action,
            ref_type=ref_type,  # type: ignore[arg-type]
            ref_name=""
            if merge_commit
            else check_ref_name(require_str(detail, "referenceName", "detail"), "detail.referenceName"),
            commit_id=commit_id,
            old_commit_id=None if merge_commit else _commit(detail, "oldCommitId", "detail"),
        )
    ]


def _from_trigger(event: dict[str, Any]) -> list[RefChange]:
    changes: list[RefChange] = []
    for index, raw_record in enumerate(require_list(event, "Records", "")):
        prefix = f"Records[{index}]"
        record = require_mapping(raw_record, prefix)
        arn_field = f"{prefix}.eventSourceARN"
        source_arn = require_str(record, "eventSourceARN", prefix)
        _, region, account, repository = check_arn(source_arn, arn_field, "codecommit")
        if not REGION.fullmatch(region) or not account or not CODECOMMIT_REPOSITORY.fullmatch(repository):
            raise MalformedEvent(arn_field, "must be a CodeCommit repository ARN with region, account and name")
        codecommit = require_mapping(record.get("codecommit"), f"{prefix}.codecommit")
        references = require_list(codecommit, "references", f"{prefix}.codecommit")
        if len(changes) + len(references) > MAX_REFS:
            raise MalformedEvent(f"{prefix}.codecommit.references", f"must hold at most {MAX_REFS} refs in all")
        for ref_index, raw_ref in enumerate(references):
            ref_prefix = f"{prefix}.codecommit.references[{ref_index}]"
            reference = require_mapping(raw_ref, ref_prefix)
            ref_type, ref_name = _ref_from_full_name(require_str(reference, "ref", ref_prefix), f"{ref_prefix}.ref")
            deleted = reference.get("deleted") is True
            commit_id = require_match(reference, "commit", ref_prefix, COMMIT_ID, _COMMIT)
            changes.append(
                RefChange(
                    event_id=f"{require_str(record, 'eventId', prefix)}#{ref_index}",
                    push_time=require_time(record, "eventTime", prefix),
                    region=region,
                    account=account,
                    repository=repository,
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
    check_depth(body, "")
    if "Records" in body:
        return _from_trigger(body)
    detail_type = body.get("detail-type")
    if detail_type != STATE_CHANGE:
        raise MalformedEvent("detail-type", f"must be {STATE_CHANGE!r}, got {detail_type!r}")
    return _from_state_change(body)
