"""The words of every message: which headline, severity and notify kinds each outcome has, how
each event is composed into a `Message`, and the titles the renderings share.

Pure functions only. The renderings (render/) lay these words out; they choose none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from ecr_pipeline.events.codebuild import BuildStateChange
from ecr_pipeline.events.envelope import Envelope, MalformedEvent
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
)
from ecr_pipeline.notify.model import ERROR, INFO, WARNING, Link, Message
from ecr_pipeline.notify.readers import PipelineDetail, read_build_source, read_pipeline_detail
from ecr_pipeline.notify.urls import (
    build_url,
    commit_url,
    deployment_url,
    ecr_repository_url,
    ecs_deployments_url,
    image_url,
)
from ecr_pipeline.records import BuildRecord, PushRecord
from ecr_pipeline.text import first_line

# The pipeline's own detail-types that notify tells.
PIPELINE_EVENTS = (
    BUILD_STARTED,
    BUILD_SKIPPED,
    SCAN_VERDICT,
    IMAGE_PROMOTED,
    PROMOTION_FAILED,
    DEPLOYMENT_STARTED,
    DEPLOYMENT_SKIPPED,
    DEPLOYMENT_SUCCEEDED,
    DEPLOYMENT_FAILED,
    DEPLOYMENT_ROLLED_BACK,
)


class Telling(NamedTuple):
    headline: str
    severity: str
    kinds: tuple[str, ...]  # pipeline.yaml's notify kinds (config.NOTIFY_KINDS) that route it


# The kinds table: every (event, status) a message can have, with its headline, severity and kinds.
TELLINGS: Mapping[tuple[str, str], Telling] = {
    ("build", "STARTED"): Telling("Build started", INFO, ("build",)),
    ("build", "SKIPPED"): Telling("Build skipped", INFO, ("skipped",)),
    ("build", "SUCCEEDED"): Telling("Build succeeded", INFO, ("build",)),
    ("build", "SUPERSEDED"): Telling("Build superseded", INFO, ("build", "skipped")),
    ("build", "STOPPED"): Telling("Build stopped", WARNING, ("build", "failures")),
    ("build", "FAILED"): Telling("Build failed", ERROR, ("build", "failures")),
    ("scan", "PASSED"): Telling("Scan passed", INFO, ("verdict",)),
    ("scan", "BLOCKED"): Telling("Image blocked by its scan", ERROR, ("verdict", "blocked")),
    ("promotion", "PROMOTED"): Telling("Image promoted", INFO, ("promoted",)),
    ("promotion", "FAILED"): Telling("Promotion failed", ERROR, ("promoted", "failures")),
    ("deployment", "STARTED"): Telling("Deployment started", INFO, ("deployment",)),
    ("deployment", "SKIPPED"): Telling("Deployment skipped", WARNING, ("deployment", "skipped")),
    ("deployment", "SUCCEEDED"): Telling("Deployment succeeded", INFO, ("deployment",)),
    ("deployment", "FAILED"): Telling("Deployment failed", ERROR, ("deployment", "failures")),
    ("deployment", "ROLLED_BACK"): Telling("Deployment rolled back", ERROR, ("deployment", "failures")),
}
TIMED_OUT_HEADLINE = "Build timed out"  # a FAILED build that ran out of time

# Words the renderings share.
FINDINGS_TITLE = "Findings (after the allowlist)"
TOP_FINDINGS_TITLE = "Top findings"
NO_FIX = "no fix yet"
NO_FINDINGS = "none"


def title(message: Message) -> str:
    """`Build failed: demo-app main a3b2c1d`: the preview, the email subject and the chat summary."""
    return f"{message.headline}: {message.subject}" if message.subject else message.headline


def reasons_title(message: Message) -> str:
    return "Why it is blocked" if message.status == "BLOCKED" else "Reasons"


# --- the pipeline's own events ----------------------------------------------------------

_PIPELINE_STATUS = {
    BUILD_STARTED: ("build", "STARTED"),
    BUILD_SKIPPED: ("build", "SKIPPED"),
    IMAGE_PROMOTED: ("promotion", "PROMOTED"),
    PROMOTION_FAILED: ("promotion", "FAILED"),
    DEPLOYMENT_STARTED: ("deployment", "STARTED"),
    DEPLOYMENT_SKIPPED: ("deployment", "SKIPPED"),
    DEPLOYMENT_SUCCEEDED: ("deployment", "SUCCEEDED"),
    DEPLOYMENT_FAILED: ("deployment", "FAILED"),
    DEPLOYMENT_ROLLED_BACK: ("deployment", "ROLLED_BACK"),
}


def _event_status(detail_type: str, read: PipelineDetail) -> tuple[str, str]:
    if detail_type == SCAN_VERDICT:
        if read.verdict not in ("PASSED", "BLOCKED"):
            raise MalformedEvent("detail.verdict", f"must be PASSED or BLOCKED, got {read.given_verdict!r}")
        return "scan", read.verdict
    if detail_type in _PIPELINE_STATUS:
        return _PIPELINE_STATUS[detail_type]
    raise MalformedEvent("detail-type", f"is not one notify tells, got {detail_type!r}")


def _reason(read: PipelineDetail) -> str:
    return f"Reason: {read.reason}" if read.reason else ""


def _is_ecs(read: PipelineDetail) -> bool:
    """Strategy ecs deploys with ECS itself; anything else (the default) through CodeDeploy."""
    return read.strategy == "ecs"


def _target_facts(read: PipelineDetail) -> tuple[tuple[str, str], ...]:
    """What the deployment went to: the ECS service (strategy ecs) or the CodeDeploy group."""
    if _is_ecs(read):
        names = ("ECS service", read.cluster, read.service)
    else:
        names = ("CodeDeploy", read.application, read.deployment_group)
    label, parent, name = names
    return ((label, f"{parent} / {name}"),) if parent and name else ()


SERVING_COMMIT = 12
BEFORE_THE_FIRST_DEPLOYMENT = "what ran before the pipeline's first deployment"


def _serving_now(read: PipelineDetail) -> tuple[str, str]:
    """What serves the environment after a failed deployment: the last one that succeeded, if any."""
    return "Serving now", read.serving_commit[:SERVING_COMMIT] or BEFORE_THE_FIRST_DEPLOYMENT


def _present(*facts: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((label, value) for label, value in facts if value)


def _note_and_facts(detail_type: str, read: PipelineDetail) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The note and the extra facts each pipeline event adds to its message."""
    if detail_type == BUILD_STARTED:
        superseded = read.superseded_build_id
        note = f"Stopped the build of an older push of this branch ({superseded})." if superseded else ""
        return note, ()
    if detail_type == BUILD_SKIPPED:
        return _reason(read), _present(("Changed files", read.changed_files))
    if detail_type == SCAN_VERDICT:
        return "", _present(("Allowlisted", read.allowlisted))
    if detail_type == IMAGE_PROMOTED:
        return "", _present(
            ("For", read.refs_of_pushes),
            ("Held by a newer push", ", ".join(read.superseded_tags)),
            ("Refused", ", ".join(read.failed_tags)),
        )
    if detail_type == PROMOTION_FAILED:
        return _reason(read), _present(("Tag", read.tag))
    if detail_type in (DEPLOYMENT_STARTED, DEPLOYMENT_SUCCEEDED):
        return "", _target_facts(read)
    if detail_type in (DEPLOYMENT_FAILED, DEPLOYMENT_ROLLED_BACK):
        return _reason(read), (*_target_facts(read), _serving_now(read))
    return _reason(read), ()  # Deployment Skipped


def message_from_pipeline_event(envelope: Envelope, stage: str = "") -> Message:
    """A message from one of the pipeline's own events (source ecr-pipeline)."""
    read = read_pipeline_detail(envelope.detail)
    event, status = _event_status(envelope.detail_type, read)
    telling = TELLINGS[(event, status)]
    note, facts = _note_and_facts(envelope.detail_type, read)
    scan = event == "scan"
    region, account = envelope.region, envelope.account

    links = []
    if read.build_id:
        links.append(Link("CodeBuild build", build_url(region, account, read.build_id)))
    if read.ecr_repository and read.image_digest:
        links.append(Link("ECR image", image_url(region, account, read.ecr_repository, read.image_digest)))
    if read.deployment_id and _is_ecs(read):
        if read.cluster and read.service:
            links.append(Link("ECS deployment", ecs_deployments_url(region, read.cluster, read.service)))
    elif read.deployment_id:
        links.append(Link("CodeDeploy deployment", deployment_url(region, read.deployment_id)))
    if read.repository and read.commit:
        links.append(Link("Commit", commit_url(region, read.repository, read.commit)))
    if read.ecr_repository and read.serving_image_digest:
        serving = image_url(region, account, read.ecr_repository, read.serving_image_digest)
        links.append(Link("Image serving now", serving))

    return Message(
        event_id=envelope.event_id,
        time=envelope.time,
        region=region,
        account=account,
        event=event,
        status=status,
        headline=telling.headline,
        severity=telling.severity,
        kinds=telling.kinds,
        stage=stage,
        repository=read.repository,
        ref_type=read.ref_type,
        ref=read.ref,
        commit=read.commit,
        push_id=read.push_id,
        author=read.author,
        commit_message=read.commit_message,
        ecr_repository=read.ecr_repository,
        image_digest=read.image_digest,
        image_tags=read.image_tags,
        environment=read.environment,
        deployment_id=read.deployment_id,
        verdict=read.verdict if scan else "",
        scanning=read.scanning if scan else "",
        counts=read.counts if scan else (),
        findings=read.top_findings if scan else (),
        reasons=read.reasons if scan else (),
        note=note,
        facts=facts,
        links=tuple(links),
    )


# --- CodeBuild --------------------------------------------------------------------------


class BuildFacts(NamedTuple):
    """What the ledger knows about a build: its record (with `superseded_by`) and its push."""

    record: BuildRecord | None = None
    push: PushRecord | None = None


def _build_status(change: BuildStateChange, superseded_by: str) -> tuple[str, str, str]:
    """The build's status, headline and note."""
    if change.status == "SUCCEEDED":
        return "SUCCEEDED", TELLINGS[("build", "SUCCEEDED")].headline, ""
    if change.status == "STOPPED" and superseded_by:
        note = f"Stopped because a newer push of this branch superseded it (build {superseded_by})."
        return "SUPERSEDED", TELLINGS[("build", "SUPERSEDED")].headline, note
    if change.status == "STOPPED":
        note = "The build was stopped before it finished; no image was pushed."
        return "STOPPED", TELLINGS[("build", "STOPPED")].headline, note
    headline = TIMED_OUT_HEADLINE if change.status == "TIMED_OUT" else TELLINGS[("build", "FAILED")].headline
    phase = change.failed_phase
    note = ""
    if phase and phase.context:
        note = f"{phase.phase} phase {phase.status}: {phase.context}"
    elif phase:
        note = f"{phase.phase} phase {phase.status}."
    return "FAILED", headline, note


def message_from_build(change: BuildStateChange, facts: BuildFacts, stage: str = "") -> Message:
    """A message from CodeBuild's state change, told with what start_build and the ledger recorded."""
    push = facts.push
    source = read_build_source(change, facts.record, push.ref_type if push else "", push.ref_name if push else "")
    status, headline, note = _build_status(change, source.superseded_by)
    telling = TELLINGS[("build", status)]

    links = []
    if change.logs_link:
        links.append(Link("CodeBuild logs", change.logs_link))
    links.append(Link("CodeBuild build", build_url(change.region, change.account, change.build_id)))
    if source.ecr_repository and status == "SUCCEEDED":
        links.append(Link("ECR repository", ecr_repository_url(change.region, change.account, source.ecr_repository)))
    if source.repository and source.commit:
        links.append(Link("Commit", commit_url(change.region, source.repository, source.commit)))

    return Message(
        event_id=change.event_id,
        time=change.time,
        region=change.region,
        account=change.account,
        stage=stage,
        event="build",
        status=status,
        headline=headline,
        severity=telling.severity,
        kinds=telling.kinds,
        repository=source.repository,
        ref_type=source.ref_type,
        ref=source.ref,
        commit=source.commit,
        push_id=(facts.record.push_id if facts.record else "") or (push.push_id if push else ""),
        author=push.author if push else "",
        commit_message=first_line(push.message) if push else "",
        ecr_repository=source.ecr_repository,
        note=note,
        facts=(("Build", change.build_id),),
        links=tuple(links),
    )
