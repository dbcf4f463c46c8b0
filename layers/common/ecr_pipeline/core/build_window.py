"""A branch's quiet window: a burst of pushes builds each image once, at the branch's newest commit.

With `build_window` (pipeline.yaml, per repository) above 0, a push that moves an existing branch
starts no build. start_build records it as the branch's head, marks every image whose paths the
push's changes (old..new commit) touched as pending, and sends itself a settle message delayed by
the window. When the delay has passed, the settle reads the branch from the ledger, never from the
message, and starts the pending images' builds at the head, if:

- the message is the head's own: no push came during its window; or
- the head was settled already: this message is a late push's, whose pending change the head's
  settle could not see; or
- an image has waited `MAX_WAIT_WINDOWS` windows (from its oldest unbuilt change to the head's
  push): pushes that never pause still get built.

Otherwise the head's own message, still to come, builds them. Pending is per image and counts every
push since the image's last build on the branch, so a later push that touches only other paths (a
docs-only push) delays a pending build but never cancels it, and the build at the head includes
every change. Git tags, new branches and the repository trigger (no old commit) build at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from ecr_pipeline.config import ImageConfig, RepositoryConfig
from ecr_pipeline.events.envelope import (
    CODECOMMIT_REPOSITORY,
    MalformedEvent,
    check_arn,
    check_ref_name,
    require_match,
    require_str,
    require_time,
    sqs_body,
)
from ecr_pipeline.records import BranchState, PendingBuild, PushRecord, is_same_push

SETTLE_KIND = "build-settle"
# An image waits at most this many windows while pushes keep coming.
MAX_WAIT_WINDOWS = 5

REASON_QUEUED = "waits for the branch's quiet window"
REASON_NEWER_PUSH = "a newer push of the branch is waiting for its own quiet window"
REASON_NOTHING_PENDING = "no image of the branch has a change waiting"


class SettleRequest(NamedTuple):
    """A settle message: which push's window ended (facts are re-read from the ledger)."""

    message_id: str
    account: str  # of the queue that delivered it (eventSourceARN): the stack's own, or rejected
    region: str
    repository: str
    branch: str
    push_time: str
    push_id: str


def settle_body(push: PushRecord) -> dict[str, Any]:
    return {
        "kind": SETTLE_KIND,
        "repository": push.repository,
        "branch": push.ref_name,
        "push_time": push.push_time,
        "push_id": push.push_id,
    }


def is_settle_batch(event: Any) -> bool:
    """An SQS batch (the window queue) rather than a push: the records say they come from SQS."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list) or not event["Records"]:
        return False
    first = event["Records"][0]
    return isinstance(first, dict) and first.get("eventSource") == "aws:sqs"


def parse_settle_record(raw: Any, index: int) -> SettleRequest:
    """One message of the window queue's batch; MalformedEvent names the field at fault."""
    prefix, message_id, body = sqs_body(raw, index)
    record = f"Records[{index}]"
    _service, region, account, _queue = check_arn(
        require_str(raw, "eventSourceARN", record), f"{record}.eventSourceARN", "sqs"
    )
    if body.get("kind") != SETTLE_KIND:
        raise MalformedEvent(f"{prefix}.kind", f"must be {SETTLE_KIND!r}")
    return SettleRequest(
        message_id=message_id,
        account=account,
        region=region,
        repository=require_match(body, "repository", prefix, CODECOMMIT_REPOSITORY, "a repository name"),
        branch=check_ref_name(require_str(body, "branch", prefix), f"{prefix}.branch"),
        push_time=require_time(body, "push_time", prefix),
        push_id=require_str(body, "push_id", prefix),
    )


def waited_too_long(head: PushRecord, pending: PendingBuild, window_seconds: int) -> bool:
    if pending.since is None:
        return False
    waited = _moment(head.push_time) - _moment(pending.since)
    return waited.total_seconds() >= MAX_WAIT_WINDOWS * window_seconds


def images_to_build(state: BranchState, request: SettleRequest, repository: RepositoryConfig) -> list[ImageConfig]:
    """The images whose pending change this settle builds at the head (see the module)."""
    head = state.head
    if head is None:
        return []
    own_window = is_same_push(head, request)
    ready = []
    for image in repository.images:
        pending = state.waiting(image.ecr_repository)
        if pending is None:
            continue
        if own_window or state.settled or waited_too_long(head, pending, repository.build_window):
            ready.append(image)
    return ready


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
