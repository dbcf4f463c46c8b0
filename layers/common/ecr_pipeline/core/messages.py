"""The one notification model: a `Message`, built from any event notify tells.

Pure functions only. Every field is optional except what identifies the event: a message
renders what its event carried and leaves the rest out. The three renderings (Slack,
plain text, Chatbot JSON) read nothing but a `Message`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple
from urllib.parse import quote

from ecr_pipeline.adapters.ledger import EnvironmentState, PushRecord
from ecr_pipeline.config import SEVERITIES, DeployTarget, PipelineConfig
from ecr_pipeline.core.naming import build_tag, commit_of_build_tag
from ecr_pipeline.events.codebuild import BuildStateChange
from ecr_pipeline.events.codedeploy import DeploymentStateChange
from ecr_pipeline.events.envelope import Envelope, MalformedEvent

# The pipeline's own detail-types (docs/events.md) that notify tells.
BUILD_STARTED = "Build Started"
BUILD_SKIPPED = "Build Skipped"
SCAN_VERDICT = "Scan Verdict"
IMAGE_PROMOTED = "Image Promoted"
PROMOTION_FAILED = "Promotion Failed"
DEPLOYMENT_STARTED = "Deployment Started"
DEPLOYMENT_SKIPPED = "Deployment Skipped"
PIPELINE_EVENTS = (
    BUILD_STARTED,
    BUILD_SKIPPED,
    SCAN_VERDICT,
    IMAGE_PROMOTED,
    PROMOTION_FAILED,
    DEPLOYMENT_STARTED,
    DEPLOYMENT_SKIPPED,
)

INFO, WARNING, ERROR = "INFO", "WARNING", "ERROR"


class Finding(NamedTuple):
    id: str
    severity: str = ""
    package: str = ""
    fixed_in: str = ""
    url: str = ""


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
    status: str  # STARTED SKIPPED SUCCEEDED FAILED STOPPED SUPERSEDED PASSED BLOCKED PROMOTED
    headline: str  # "Build failed"
    severity: str  # INFO | WARNING | ERROR
    kinds: tuple[str, ...]  # the pipeline.yaml notify kinds this message belongs to
    stage: str = ""
    repository: str = ""
    ref_type: str = ""
    ref: str = ""
    commit: str = ""
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
    def subject(self) -> str:
        """What the message is about, in a few words: `demo-app main a3b2c1d`."""
        parts = [self.ecr_repository or self.repository, self.ref, self.short_commit]
        if self.environment:
            parts.append(f"-> {self.environment}")
        return " ".join(part for part in parts if part)


class BuildFacts(NamedTuple):
    """What the ledger knows about a build: its record (with `superseded_by`) and its push."""

    record: dict[str, Any] | None = None
    push: PushRecord | None = None


# --- console links ----------------------------------------------------------------------


def _console(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


def commit_url(region: str, repository: str, commit: str) -> str:
    return f"{_console(region)}/codesuite/codecommit/repositories/{quote(repository)}/commit/{commit}?region={region}"


def build_url(region: str, account: str, build_id: str) -> str:
    project = build_id.partition(":")[0]
    return (
        f"{_console(region)}/codesuite/codebuild/{account}/projects/{quote(project)}"
        f"/build/{quote(build_id, safe='')}/?region={region}"
    )


def image_url(region: str, account: str, ecr_repository: str, digest: str) -> str:
    return (
        f"{_console(region)}/ecr/repositories/private/{account}/{quote(ecr_repository)}"
        f"/_/image/{quote(digest, safe='')}/details?region={region}"
    )


def ecr_repository_url(region: str, account: str, ecr_repository: str) -> str:
    return f"{_console(region)}/ecr/repositories/private/{account}/{quote(ecr_repository)}?region={region}"


def deployment_url(region: str, deployment_id: str) -> str:
    return f"{_console(region)}/codesuite/codedeploy/deployments/{quote(deployment_id)}?region={region}"


def display_time(time: str) -> str:
    """`2026-11-28T10:05:00.000000Z` -> `2026-11-28 10:05:00 UTC`; anything unparsable as is."""
    try:
        moment = dt.datetime.fromisoformat(time)
    except ValueError:
        return time
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- tolerant readers for the pipeline's own detail fields ------------------------------


def _text(detail: dict[str, Any], key: str) -> str:
    value = detail.get(key)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _texts(detail: dict[str, Any], key: str) -> tuple[str, ...]:
    value = detail.get(key)
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if not isinstance(value, list):
        return ()
    return tuple(str(item).strip() for item in value if isinstance(item, str | int | float) and str(item).strip())


def first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def _counts(value: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        return ()
    known = [severity for severity in SEVERITIES if severity in value]
    others = sorted(key for key in value if key not in SEVERITIES and key != "TOTAL")
    counts = []
    for severity in [*known, *others]:
        count = value[severity]
        if isinstance(count, int) and not isinstance(count, bool):
            counts.append((str(severity), count))
    return tuple(counts)


def _findings(value: Any) -> tuple[Finding, ...]:
    if not isinstance(value, list):
        return ()
    findings = []
    for item in value:
        if isinstance(item, dict) and _text(item, "id"):
            findings.append(
                Finding(
                    id=_text(item, "id"),
                    severity=_text(item, "severity"),
                    package=_text(item, "package"),
                    fixed_in=_text(item, "fixed_in"),
                    url=_text(item, "url"),
                )
            )
    return tuple(findings)


def _first_push(detail: dict[str, Any]) -> dict[str, Any]:
    pushes = detail.get("pushes")
    if isinstance(pushes, list) and pushes and isinstance(pushes[0], dict):
        return pushes[0]
    return {}


def _refs_of_pushes(detail: dict[str, Any]) -> str:
    pushes = detail.get("pushes")
    if not isinstance(pushes, list):
        return ""
    refs = [_text(push, "ref") for push in pushes if isinstance(push, dict) and _text(push, "ref")]
    return ", ".join(dict.fromkeys(refs))


# --- the pipeline's own events ----------------------------------------------------------


def _pipeline_shape(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """event, status, headline, severity, kinds and the per-event fields of one pipeline event."""
    if detail_type == BUILD_STARTED:
        superseded = _text(detail, "superseded_build_id")
        return {
            "event": "build",
            "status": "STARTED",
            "headline": "Build started",
            "severity": INFO,
            "kinds": ("build",),
            "note": f"Stopped the build of an older push of this branch ({superseded})." if superseded else "",
        }
    if detail_type == BUILD_SKIPPED:
        changed = _text(detail, "changed_files")
        return {
            "event": "build",
            "status": "SKIPPED",
            "headline": "Build skipped",
            "severity": INFO,
            "kinds": ("skipped",),
            "note": _reason(detail),
            "facts": (("Changed files", changed),) if changed else (),
        }
    if detail_type == SCAN_VERDICT:
        verdict = _text(detail, "verdict").upper()
        if verdict not in ("PASSED", "BLOCKED"):
            raise MalformedEvent("detail.verdict", f"must be PASSED or BLOCKED, got {detail.get('verdict')!r}")
        blocked = verdict == "BLOCKED"
        # A list of CVE ids, or just how many findings the allowlist removed.
        allowlisted = ", ".join(_texts(detail, "allowlisted")) or _text(detail, "allowlisted")
        return {
            "event": "scan",
            "status": verdict,
            "headline": "Image blocked by its scan" if blocked else "Scan passed",
            "severity": ERROR if blocked else INFO,
            "kinds": ("verdict", "blocked") if blocked else ("verdict",),
            "verdict": verdict,
            "scanning": _text(detail, "scanning"),
            "counts": _counts(detail.get("counts")),
            "findings": _findings(detail.get("top_findings")),
            "reasons": _texts(detail, "reasons"),
            "facts": (("Allowlisted", allowlisted),) if allowlisted else (),
        }
    if detail_type == IMAGE_PROMOTED:
        facts = (
            ("For", _refs_of_pushes(detail)),
            ("Held by a newer push", ", ".join(_texts(detail, "superseded_tags"))),
            ("Refused", ", ".join(_texts(detail, "failed_tags"))),
        )
        return {
            "event": "promotion",
            "status": "PROMOTED",
            "headline": "Image promoted",
            "severity": INFO,
            "kinds": ("promoted",),
            "facts": tuple((label, value) for label, value in facts if value),
        }
    if detail_type == PROMOTION_FAILED:
        tag = _text(detail, "tag")
        return {
            "event": "promotion",
            "status": "FAILED",
            "headline": "Promotion failed",
            "severity": ERROR,
            "kinds": ("promoted", "failures"),
            "note": _reason(detail),
            "facts": (("Tag", tag),) if tag else (),
        }
    if detail_type == DEPLOYMENT_STARTED:
        return {
            "event": "deployment",
            "status": "STARTED",
            "headline": "Deployment started",
            "severity": INFO,
            "kinds": ("deployment",),
            "facts": _deployment_facts(_text(detail, "application"), _text(detail, "deployment_group")),
        }
    if detail_type == DEPLOYMENT_SKIPPED:
        return {
            "event": "deployment",
            "status": "SKIPPED",
            "headline": "Deployment skipped",
            "severity": WARNING,
            "kinds": ("deployment", "skipped"),
            "note": _reason(detail),
        }
    raise MalformedEvent("detail-type", f"is not one notify tells, got {detail_type!r}")


def _reason(detail: dict[str, Any]) -> str:
    reason = _text(detail, "reason")
    return f"Reason: {reason}" if reason else ""


def _deployment_facts(application: str, group: str) -> tuple[tuple[str, str], ...]:
    if application and group:
        return (("CodeDeploy", f"{application} / {group}"),)
    return ()


def message_from_pipeline_event(envelope: Envelope, stage: str = "") -> Message:
    """A message from one of the pipeline's own events (source ecr-pipeline)."""
    detail = envelope.detail
    shape = _pipeline_shape(envelope.detail_type, detail)
    push = _first_push(detail)
    repository = _text(detail, "repository") or _text(push, "repository")
    commit = _text(detail, "commit") or _text(push, "commit") or commit_of_build_tag(_text(detail, "image_tag")) or ""
    ecr_repository = _text(detail, "ecr_repository")
    digest = _text(detail, "image_digest")
    deployment_id = _text(detail, "deployment_id")
    build_id = _text(detail, "build_id")
    region, account = envelope.region, envelope.account

    links = []
    if build_id:
        links.append(Link("CodeBuild build", build_url(region, account, build_id)))
    if ecr_repository and digest:
        links.append(Link("ECR image", image_url(region, account, ecr_repository, digest)))
    if deployment_id:
        links.append(Link("CodeDeploy deployment", deployment_url(region, deployment_id)))
    if repository and commit:
        links.append(Link("Commit", commit_url(region, repository, commit)))

    return Message(
        event_id=envelope.event_id,
        time=envelope.time,
        region=region,
        account=account,
        stage=stage,
        repository=repository,
        ref_type=_text(detail, "ref_type") or _text(push, "ref_type"),
        ref=_text(detail, "ref") or _text(push, "ref"),
        commit=commit,
        author=_text(detail, "author") or _text(push, "author"),
        commit_message=first_line(_text(detail, "message") or _text(push, "message")),
        ecr_repository=ecr_repository,
        image_digest=digest,
        # Image Promoted names the tags it added; other events may carry the image's tags.
        image_tags=_texts(detail, "tags") or _texts(detail, "image_tags"),
        environment=_text(detail, "environment"),
        deployment_id=deployment_id,
        links=tuple(links),
        **shape,
    )


# --- CodeBuild --------------------------------------------------------------------------


def _last_path_segment(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] if "/" in url else ""


def message_from_build(change: BuildStateChange, facts: BuildFacts, stage: str = "") -> Message:
    """A message from CodeBuild's state change, told with what start_build and the ledger recorded."""
    env = change.environment
    record = facts.record or {}
    push = facts.push

    def known(*values: Any) -> str:
        return next((value for value in values if isinstance(value, str) and value), "")

    repository = known(
        env.get("SOURCE_REPOSITORY"),
        record.get("repository"),
        _last_path_segment(env.get("SOURCE_URL", "")),
        _last_path_segment(change.source_location),
    )
    commit = known(commit_of_build_tag(env.get("IMAGE_TAG")), record.get("commit"), change.source_version)
    image_uri = env.get("ECR_REPOSITORY_URI", "")
    ecr_repository = known(record.get("ecr_repository"), image_uri.partition("/")[2])
    superseded_by = known(record.get("superseded_by"))

    kinds: tuple[str, ...]
    if change.status == "SUCCEEDED":
        status, headline, severity, kinds, note = "SUCCEEDED", "Build succeeded", INFO, ("build",), ""
    elif change.status == "STOPPED" and superseded_by:
        status, headline, severity, kinds = "SUPERSEDED", "Build superseded", INFO, ("build", "skipped")
        note = f"Stopped because a newer push of this branch superseded it (build {superseded_by})."
    elif change.status == "STOPPED":
        status, headline, severity, kinds = "STOPPED", "Build stopped", WARNING, ("build", "failures")
        note = "The build was stopped before it finished; no image was pushed."
    else:
        status, severity, kinds = "FAILED", ERROR, ("build", "failures")
        headline = "Build timed out" if change.status == "TIMED_OUT" else "Build failed"
        phase = change.failed_phase
        note = f"{phase.phase} phase {phase.status}: {phase.context}" if phase and phase.context else ""
        if phase and not phase.context:
            note = f"{phase.phase} phase {phase.status}."

    links = []
    if change.logs_link:
        links.append(Link("CodeBuild logs", change.logs_link))
    links.append(Link("CodeBuild build", build_url(change.region, change.account, change.build_id)))
    if ecr_repository and status == "SUCCEEDED":
        links.append(Link("ECR repository", ecr_repository_url(change.region, change.account, ecr_repository)))
    if repository and commit:
        links.append(Link("Commit", commit_url(change.region, repository, commit)))

    return Message(
        event_id=change.event_id,
        time=change.time,
        region=change.region,
        account=change.account,
        stage=stage,
        event="build",
        status=status,
        headline=headline,
        severity=severity,
        kinds=kinds,
        repository=repository,
        ref_type=known(env.get("SOURCE_REF_TYPE"), record.get("ref_type"), push.ref_type if push else ""),
        ref=known(env.get("SOURCE_BRANCH"), record.get("ref_name"), push.ref_name if push else ""),
        commit=commit,
        author=push.author if push else "",
        commit_message=first_line(push.message) if push else "",
        ecr_repository=ecr_repository,
        note=note,
        facts=(("Build", change.build_id),),
        links=tuple(links),
    )


# --- CodeDeploy -------------------------------------------------------------------------


class DeploymentFacts(NamedTuple):
    """What pipeline.yaml says about a CodeDeploy deployment group, and what the ledger says was deployed.

    `deployed` is the environment's record when it still names this deployment, and `push` the push
    of its commit; both are None when the ledger has moved on to a newer candidate.
    """

    repository: str = ""
    ecr_repository: str = ""
    target: DeployTarget | None = None
    deployed: EnvironmentState | None = None
    push: PushRecord | None = None


def deployment_facts(config: PipelineConfig, application: str, deployment_group: str) -> DeploymentFacts | None:
    """The configured deploy target behind a CodeDeploy application and group, or None if none is."""
    for repository in config.repositories.values():
        for image in repository.images:
            for target in image.deploy:
                if target.codedeploy_application == application and target.deployment_group == deployment_group:
                    return DeploymentFacts(repository.name, image.ecr_repository, target)
    return None


_DEPLOYMENT_STATES = {
    "SUCCESS": ("SUCCEEDED", "Deployment succeeded", INFO, ("deployment",)),
    "FAILURE": ("FAILED", "Deployment failed", ERROR, ("deployment", "failures")),
    "STOP": ("STOPPED", "Deployment stopped", WARNING, ("deployment", "failures")),
}


def message_from_deployment(change: DeploymentStateChange, facts: DeploymentFacts, stage: str = "") -> Message:
    status, headline, severity, kinds = _DEPLOYMENT_STATES[change.state]
    target = facts.target
    deployed = facts.deployed
    links = [Link("CodeDeploy deployment", deployment_url(change.region, change.deployment_id))]
    if deployed:
        links.append(
            Link("ECR image", image_url(change.region, change.account, deployed.ecr_repository, deployed.image_digest))
        )
        if facts.repository:
            links.append(Link("Commit", commit_url(change.region, facts.repository, deployed.commit)))
    return Message(
        event_id=change.event_id,
        time=change.time,
        region=change.region,
        account=change.account,
        stage=stage,
        event="deployment",
        status=status,
        headline=headline,
        severity=severity,
        kinds=kinds,
        repository=facts.repository,
        ref_type=deployed.ref_type if deployed else "",
        ref=deployed.ref_name if deployed else "",
        commit=deployed.commit if deployed else "",
        author=facts.push.author if facts.push else "",
        commit_message=first_line(facts.push.message) if facts.push else "",
        ecr_repository=facts.ecr_repository,
        image_digest=deployed.image_digest if deployed else "",
        environment=target.environment if target else "",
        deployment_id=change.deployment_id,
        facts=_deployment_facts(change.application, change.deployment_group),
        links=tuple(links),
    )
