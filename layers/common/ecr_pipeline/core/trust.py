"""Where the pipeline draws its trust boundary: events are notifications, facts come from the ledger.

- An AWS event (CodeCommit, ECR, Inspector, CodeBuild, CodeDeploy, the retry queue) is acted on
  only when it comes from the stack's own account and region (`Home.check_origin`).
- A pipeline event that asks to move a tag or an environment ("Scan Verdict", "Promotion
  Requested", "Image Promoted") is acted on only as far as the ledger backs it: the verdict of
  that digest, the pushes recorded for that commit, the image the pipeline registered. What the
  event claims beyond that is ignored; a claim the ledger contradicts is `Unbacked`.
Repository URIs are built from the stack's account and region, never taken from an event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from ecr_pipeline.observability import logger
from ecr_pipeline.outcomes import Outcome, Untrusted
from ecr_pipeline.records import PushRecord, is_same_push


class Home(NamedTuple):
    """The stack's own account and region."""

    account: str
    region: str

    def check_origin(self, account: str, region: str, field: str = "") -> None:
        prefix = f"{field}." if field else ""
        if account != self.account:
            raise Untrusted(f"{prefix}account", f"is {account!r}, not this stack's account")
        if region != self.region:
            raise Untrusted(f"{prefix}region", f"is {region!r}, not this stack's region {self.region}")


def backed_pushes(claimed: Iterable[PushRecord], recorded: Iterable[PushRecord]) -> list[PushRecord]:
    """The ledger's records of the claimed pushes that it holds (same push id and time); the
    ledger's own fields, not the event's, are what the caller acts on."""
    kept = list(recorded)
    return [record for push in claimed for record in kept if is_same_push(record, push)]


def unbacked(field: str, problem: str) -> Outcome[Any]:
    """The outcome of a claim the ledger does not back: rejected, naming the field, nothing moved."""
    error = Untrusted(field, problem)
    logger.warning("event not backed by the ledger: rejected", field=field, reason=str(error))
    return Outcome("rejected", str(error), facts={"field": field})
