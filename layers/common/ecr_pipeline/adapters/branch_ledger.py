"""The ledger's items about a branch, all in one partition so one Query reads them together.

pk REF#<codecommit repo>#branch#<branch name>, with sk:
- HEAD                the newest push of the branch (its push record), and `settled_push_id` once
                      the quiet window of that push has passed and its pending builds were started.
- BUILD#<ecr repo>    the build of the newest push of the branch, per image: what supersede stops,
                      and where a coalesced range of changes starts.
- PENDING#<ecr repo>  the newest push whose changes touched the image's paths, with `since`, the
                      push time of the oldest touching push not built yet (removed once built).

Every write is push-ordered (records.py), so a late or repeated push never moves them back.
"""

from __future__ import annotations

from typing import Any

from ecr_pipeline.adapters.ledger_table import LedgerTable
from ecr_pipeline.records import (
    NEWER_PUSH,
    NOT_NEWER_PUSH,
    SAME_PUSH,
    BranchBuild,
    BranchState,
    PendingBuild,
    PushOrdered,
    PushRecord,
)

_HEAD = "HEAD"
_BUILD = "BUILD#"
_PENDING = "PENDING#"


def _branch_pk(repository: str, branch: str) -> str:
    return f"REF#{repository}#branch#{branch}"


def _branch_build(values: dict[str, Any]) -> BranchBuild:
    return BranchBuild(values["build_id"], values["commit"], values["push_time"], values["push_id"])


def _push(values: dict[str, Any]) -> PushRecord:
    return PushRecord(**{name: values[name] for name in PushRecord._fields if name in values})


class BranchLedger(LedgerTable):
    def newest_branch_build(self, repository: str, branch: str, ecr_repository: str) -> BranchBuild | None:
        values = self._get({"pk": _branch_pk(repository, branch), "sk": _BUILD + ecr_repository})
        return _branch_build(values) if values else None

    def claim_branch_build(
        self, repository: str, branch: str, ecr_repository: str, build: BranchBuild
    ) -> tuple[bool, BranchBuild | None]:
        """Make `build` the newest build of the branch for this image.

        Returns (claimed, other): when claimed, `other` is the build it replaced (to stop);
        when not, `other` is the newer build already recorded (so this one is the superseded one).
        """
        key = {"pk": _branch_pk(repository, branch), "sk": _BUILD + ecr_repository}
        values = {**key, "kind": "branch_build", **build._asdict()}
        claimed, other = self._put(values, NEWER_PUSH, build)
        return claimed, (_branch_build(other) if other else None)

    def record_branch_head(self, push: PushRecord) -> bool:
        """Make `push` the branch's newest push; False when the ledger holds this push or a newer one."""
        key = {"pk": _branch_pk(push.repository, push.ref_name), "sk": _HEAD}
        return self._put({**key, "kind": "branch_head", **push._asdict()}, NEWER_PUSH, push)[0]

    def mark_pending(self, ecr_repository: str, push: PushRecord) -> tuple[bool, PendingBuild | None]:
        """Record that a push of a branch changed the image's paths. Returns (written, replaced):
        written is False when a newer touching push is recorded; `replaced` is the older touching push
        this one took over from while it was still waiting (not built), so its change is built with this one's."""
        written, old = self._write(
            "update_item",
            NEWER_PUSH,
            push,
            {":commit": {"S": push.commit}, ":kind": {"S": "pending_build"}},
            Key={"pk": {"S": _branch_pk(push.repository, push.ref_name)}, "sk": {"S": _PENDING + ecr_repository}},
            UpdateExpression=(
                "SET #commit = :commit, push_time = :push_time, push_id = :push_id,"
                " since = if_not_exists(since, :push_time), kind = :kind"
            ),
            ExpressionAttributeNames={"#commit": "commit"},
        )
        if not written or old is None or old.get("since") is None or old.get("push_id") == push.push_id:
            return written, None
        return written, PendingBuild(old["commit"], old["push_time"], old["push_id"], old.get("since"))

    def mark_built(self, repository: str, branch: str, ecr_repository: str, push: PushOrdered) -> bool:
        """A build of `push` covers the image's pending change: its waiting time starts again with
        the next touching push. Refused (False) when a newer touching push is already pending."""
        return self._write(
            "update_item",
            NOT_NEWER_PUSH,
            push,
            Key={"pk": {"S": _branch_pk(repository, branch)}, "sk": {"S": _PENDING + ecr_repository}},
            UpdateExpression="REMOVE since",
        )[0]

    def mark_settled(self, head: PushRecord) -> bool:
        """The head push's quiet window has passed and its pending builds were started."""
        return self._write(
            "update_item",
            SAME_PUSH,
            head,
            Key={"pk": {"S": _branch_pk(head.repository, head.ref_name)}, "sk": {"S": _HEAD}},
            UpdateExpression="SET settled_push_id = :push_id",
        )[0]

    def branch_state(self, repository: str, branch: str) -> BranchState:
        """The branch's head, its builds and its pending changes: one consistent Query."""
        head: PushRecord | None = None
        settled = False
        builds: dict[str, BranchBuild] = {}
        pending: dict[str, PendingBuild] = {}
        for values in self._query(_branch_pk(repository, branch)):
            sort_key = str(values.get("sk", ""))
            if sort_key == _HEAD:
                head = _push(values)
                settled = values.get("settled_push_id") == head.push_id
            elif sort_key.startswith(_BUILD):
                builds[sort_key[len(_BUILD) :]] = _branch_build(values)
            elif sort_key.startswith(_PENDING):
                pending[sort_key[len(_PENDING) :]] = PendingBuild(
                    values["commit"], values["push_time"], values["push_id"], values.get("since")
                )
        return BranchState(head, settled, builds, pending)
