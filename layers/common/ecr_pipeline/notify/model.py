"""The one notification model: a `Message`, and the `Finding` and `Link` it carries.

Every field is optional except what identifies the event: a message renders what its event
carried and leaves the rest out. The renderings read nothing but a `Message`. `Finding` is also
scan_check's finding (core/scan_policy.py): one shape from the scan to the rendered line.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from ecr_pipeline.core.naming import build_tag

INFO, WARNING, ERROR = "INFO", "WARNING", "ERROR"


class Finding(NamedTuple):
    id: str
    severity: str = ""
    package: str = ""
    fixed_in: str = ""
    url: str = ""

    def as_detail(self) -> dict[str, str]:
        """The finding in a "Scan Verdict" detail's `top_findings`."""
        return {
            "id": self.id,
            "severity": self.severity,
            "package": self.package,
            "fixed_in": self.fixed_in,
            "url": self.url,
        }


class Link(NamedTuple):
    label: str
    url: str


class Message(NamedTuple):
    """What happened, to which push and image, and where to look; empty strings are unknown."""

    event_id: str
    time: str
    region: str
    account: str
    event: str  # build | scan | promotion | deployment
    status: str  # STARTED SKIPPED SUCCEEDED FAILED STOPPED SUPERSEDED PASSED BLOCKED PROMOTED ROLLED_BACK
    headline: str  # "Build failed"
    severity: str  # INFO | WARNING | ERROR
    kinds: tuple[str, ...]  # the pipeline.yaml notify kinds this message belongs to
    stage: str = ""
    repository: str = ""
    ref_type: str = ""
    ref: str = ""
    commit: str = ""
    # The push the message is about (records.PushRecord.push_id): its chat thread.
    push_id: str = ""
    author: str = ""
    commit_message: str = ""
    ecr_repository: str = ""
    image_digest: str = ""
    image_tags: tuple[str, ...] = ()
    environment: str = ""
    deployment_id: str = ""
    verdict: str = ""
    scanning: str = ""
    counts: tuple[tuple[str, int], ...] = ()
    findings: tuple[Finding, ...] = ()
    reasons: tuple[str, ...] = ()
    note: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    links: tuple[Link, ...] = ()

    @property
    def short_commit(self) -> str:
        return self.commit[:7]

    @property
    def image(self) -> str:
        """`repository@digest` when the digest is known, else `repository:sha-<commit>` (the build tag), else ``."""
        if self.ecr_repository and self.image_digest:
            return f"{self.ecr_repository}@{self.image_digest}"
        if self.ecr_repository and self.commit:
            return f"{self.ecr_repository}:{build_tag(self.commit)}"
        return ""

    @property
    def thread(self) -> str:
        """The push a message belongs to: its push id, else `repository@commit`, else `` (no push)."""
        if self.push_id:
            return self.push_id
        return f"{self.repository}@{self.commit}" if self.repository and self.commit else ""

    @property
    def subject(self) -> str:
        """What the message is about, in a few words: `demo-app main a3b2c1d`."""
        parts = [self.ecr_repository or self.repository, self.ref, self.short_commit]
        if self.environment:
            parts.append(f"-> {self.environment}")
        return " ".join(part for part in parts if part)


def display_time(time: str) -> str:
    """`2026-11-28T10:05:00.000000Z` -> `2026-11-28 10:05:00 UTC`; anything unparsable as is."""
    try:
        moment = dt.datetime.fromisoformat(time)
    except ValueError:
        return time
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
