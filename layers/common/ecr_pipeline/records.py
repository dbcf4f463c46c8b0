"""What the pipeline knows, as records, and the one rule that orders pushes.

The records are what the ledger (adapters/ledger.py) stores and what core, events and notify
pass around; they sit here, beside no adapter, so a pure decision imports no boto3 code.

Push order: a push is later than another when its push time (the CodeCommit event's time,
ISO 8601 UTC, so string order is time order) is later, the push id breaking ties. Every
"newer than" in the pipeline is `push_order` or `is_newer_push`; in the ledger the same rule
is written as DynamoDB condition expressions over the stored item's `push_time` / `push_id`
and the writing record's `:push_time` / `:push_id`:

- NEWER_PUSH: the write lands only if no item exists or the stored push is strictly older,
  i.e. `is_newer_push(writer, stored)`. Used for the push of a ref and the newest branch build.
- NEWER_OR_SAME_PUSH: also the same push again (a retried write): a promotion tag.
- ENVIRONMENT_CLAIM: a newer push, or the same push again while its deployment is not yet
  created (no `deployment_id`): the environment item, so a late or repeated event never moves
  an environment back to an earlier push, while a retry of the current one can still finish.
- SAME_PUSH: the stored item still holds exactly this push: setting the task definition or
  deployment id of the environment's candidate, refused once a newer candidate took it.
- NOT_NEWER_PUSH: the stored push is this push or an older one: a branch's pending change is
  marked built by a build of this push, never one that a newer push marked since.
- DEPLOYMENT_END: the stored item still holds this push and this deployment, not yet ended: a
  deployment's end is recorded (and told) once, whichever of its state events comes first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

NEWER_PUSH = "attribute_not_exists(pk) OR push_time < :push_time OR (push_time = :push_time AND push_id < :push_id)"
NEWER_OR_SAME_PUSH = (
    "attribute_not_exists(pk) OR push_time < :push_time OR (push_time = :push_time AND push_id <= :push_id)"
)
ENVIRONMENT_CLAIM = (
    NEWER_PUSH + " OR (push_time = :push_time AND push_id = :push_id AND attribute_not_exists(deployment_id))"
)
SAME_PUSH = "push_time = :push_time AND push_id = :push_id"
NOT_NEWER_PUSH = "push_time < :push_time OR (push_time = :push_time AND push_id <= :push_id)"
DEPLOYMENT_END = SAME_PUSH + " AND deployment_id = :deployment_id AND attribute_not_exists(outcome)"


class PushOrdered(Protocol):
    """Anything that belongs to one push: a push, a build of it, an environment's candidate."""

    @property
    def push_time(self) -> str: ...

    @property
    def push_id(self) -> str: ...


def push_order(record: PushOrdered) -> tuple[str, str]:
    """The sort key of the push order: time, then push id."""
    return (record.push_time, record.push_id)


def is_newer_push(record: PushOrdered, than: PushOrdered) -> bool:
    return push_order(record) > push_order(than)


def is_same_push(record: PushOrdered, other: PushOrdered) -> bool:
    return push_order(record) == push_order(other)


def newest_push[Ordered: PushOrdered](records: Iterable[Ordered]) -> Ordered | None:
    """The record of the latest push among `records`; None when there are none."""
    return max(records, key=push_order, default=None)


class PushRecord(NamedTuple):
    repository: str
    ref_type: str
    ref_name: str
    commit: str
    push_time: str
    push_id: str
    author: str = ""
    message: str = ""

    def as_detail(self) -> dict[str, Any]:
        """The push fields of every pipeline event: the one place a push detail is written."""
        return {
            "repository": self.repository,
            "ref_type": self.ref_type,
            "ref": self.ref_name,
            "commit": self.commit,
            "push_time": self.push_time,
            "push_id": self.push_id,
            "author": self.author,
            "message": self.message,
        }


class NoticeRecord(NamedTuple):
    """One fact notify told about a commit, and per channel what became of it (adapters/notice_ledger.py)."""

    repository: str
    commit: str
    ref: str
    time: str  # the told event's time
    fact: str  # the delivery key (notify/facts.py)
    event: str  # build | scan | promotion | deployment
    status: str
    headline: str
    channels: tuple[tuple[str, str], ...]  # (channel, delivered | kept | failed)
    image_digest: str | None = None
    environment: str | None = None


class BranchBuild(NamedTuple):
    """The build of the newest push of a branch, per image: what supersede stops."""

    build_id: str
    commit: str
    push_time: str
    push_id: str


class PendingBuild(NamedTuple):
    """The newest push of a branch whose changes touched an image's paths, waiting for the branch's
    quiet window; `since` is the push time of the oldest such push not yet built (None once built)."""

    commit: str
    push_time: str
    push_id: str
    since: str | None = None


class BranchState(NamedTuple):
    """What the ledger holds about one branch: its newest push (and whether that push's quiet window
    has been settled), and per image its newest build and its pending change."""

    head: PushRecord | None
    settled: bool
    builds: dict[str, BranchBuild]
    pending: dict[str, PendingBuild]

    def waiting(self, ecr_repository: str) -> PendingBuild | None:
        """The image's pending change when no build of it or of a later push exists yet."""
        pending = self.pending.get(ecr_repository)
        built = self.builds.get(ecr_repository)
        if pending is None or (built is not None and not is_newer_push(pending, built)):
            return None
        return pending


class BuildRecord(NamedTuple):
    """A started build: which push and image it is for, and the build that superseded it, if any."""

    build_id: str
    repository: str = ""
    ref_type: str = ""
    ref_name: str = ""
    commit: str = ""
    ecr_repository: str = ""
    push_time: str = ""
    push_id: str = ""
    superseded_by: str | None = None


class ImageRecord(NamedTuple):
    ecr_repository: str
    image_digest: str
    commit: str | None = None
    codecommit_repository: str | None = None
    pushed_at: str | None = None
    repository_uri: str | None = None
    verdict: str | None = None
    verdict_reasons: tuple[str, ...] = ()
    scanning: str | None = None


class DeploymentRecord(NamedTuple):
    """One deployment the pipeline started and how it ended: the history delivery metrics are read from."""

    ecr_repository: str
    environment: str
    deployment_id: str
    commit: str
    push_time: str
    started_at: str
    ended_at: str | None = None
    outcome: str | None = None  # SUCCEEDED, FAILED or ROLLED_BACK once it ended


class EnvironmentState(NamedTuple):
    """A deploy candidate for an environment, as claimed in the ledger."""

    ecr_repository: str
    environment: str
    image_digest: str
    commit: str
    ref_type: str
    ref_name: str
    push_time: str
    push_id: str
    task_definition_arn: str | None = None
    deployment_id: str | None = None
    author: str = ""
    message: str = ""
    # Once the deployment ended: SUCCEEDED, FAILED, ROLLED_BACK or STOPPED, and why.
    outcome: str | None = None
    outcome_reason: str | None = None
    # Why the traffic-shift gate refused this candidate's deployment, if it did.
    gate_reason: str | None = None

    def same_push(self, other: PushOrdered) -> bool:
        return is_same_push(self, other)

    def push(self, repository: str) -> PushRecord:
        """The candidate's push, as the events that tell of it carry it."""
        return PushRecord(
            repository,
            self.ref_type,
            self.ref_name,
            self.commit,
            self.push_time,
            self.push_id,
            author=self.author,
            message=self.message,
        )
