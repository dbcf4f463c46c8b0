"""The story of a push, pure: what the ledger and the services hold about one commit in, a document out.

`ecr-pipeline status` (cli.py) reads the facts (adapters/story_reads.py) and hands them here:
`commit_story` assembles the JSON document of one commit (its pushes, per image its builds, digest,
tags, verdict and top findings, the environments it reached and what replaced it there, the builds
it skipped, every notification told), and `render_story` says the same document as text.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ecr_pipeline.config import SEVERITIES
from ecr_pipeline.notify.model import Finding
from ecr_pipeline.records import DeploymentRecord, EnvironmentState, ImageRecord, NoticeRecord, PushRecord

TOP_FINDINGS = 5
# The kind of a told "Build Skipped" fact (notify/facts.py): `Build Skipped#<push id>#<ecr repo>#<reason>`;
# a fact too long to keep whole is a digest, and the notification still tells the skip.
_SKIPPED_FACT = "Build Skipped#"
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate((*SEVERITIES, "UNTRIAGED"))}


class BuildFacts(NamedTuple):
    """One CodeBuild build of the commit, as CodeBuild answers it, with the ledger's supersede mark."""

    build_id: str
    status: str
    ref: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    log_url: str = ""
    console_url: str = ""
    superseded_by: str | None = None
    superseded_by_commit: str | None = None


class EnvironmentFacts(NamedTuple):
    """A deploy target of an image: the ledger's candidate, what it serves, and its ended deployments."""

    environment: str
    target: str
    candidate: EnvironmentState | None = None
    serving: EnvironmentState | None = None
    history: tuple[DeploymentRecord, ...] = ()


class ImageFacts(NamedTuple):
    """One configured image of the commit's repository: its builds, the built image (if any) and its places."""

    ecr_repository: str
    builds: tuple[BuildFacts, ...] = ()
    image_digest: str | None = None
    tags: tuple[str, ...] = ()
    pushed_at: str | None = None
    record: ImageRecord | None = None
    findings: tuple[Finding, ...] = ()
    environments: tuple[EnvironmentFacts, ...] = ()


class CommitFacts(NamedTuple):
    repository: str
    commit: str
    pushes: tuple[PushRecord, ...] = ()
    images: tuple[ImageFacts, ...] = ()
    notices: tuple[NoticeRecord, ...] = ()


# --- assembling the document -----------------------------------------------------------------


def top_findings(findings: tuple[Finding, ...], limit: int = TOP_FINDINGS) -> list[Finding]:
    """The most severe findings first (then by id), each once."""
    unique = {finding.id: finding for finding in findings}.values()
    ranked = sorted(unique, key=lambda item: (_SEVERITY_RANK.get(item.severity, len(_SEVERITY_RANK)), item.id))
    return ranked[:limit]


def skipped_builds(notices: tuple[NoticeRecord, ...], ecr_repository: str) -> list[dict[str, str]]:
    """The builds of the image start_build skipped (a push that touched none of its paths, a newer push),
    from the told "Build Skipped" facts: the ledger keeps no item for a build that never started."""
    skipped = []
    # The push part of the fact is a push id, which holds '#' itself: the image's name marks the reason.
    marker = f"#{ecr_repository}#"
    for notice in notices:
        if notice.fact.startswith(_SKIPPED_FACT) and marker in notice.fact:
            reason = notice.fact.split(marker, 1)[1]
            skipped.append({"reason": reason, "time": notice.time, "ref": notice.ref})
    return skipped


def _build(build: BuildFacts) -> dict[str, Any]:
    status = "SUPERSEDED" if build.superseded_by and build.status in ("STOPPED", "IN_PROGRESS") else build.status
    superseded = None
    if build.superseded_by:
        superseded = {"build_id": build.superseded_by, "commit": build.superseded_by_commit}
    return {**build._asdict(), "status": status, "superseded_by": superseded}


def _candidate_status(candidate: EnvironmentState) -> str:
    if candidate.outcome:
        return candidate.outcome
    if candidate.gate_reason:
        return "REFUSED"
    return "IN_PROGRESS" if candidate.deployment_id else "PENDING"


def _place(state: EnvironmentState, status: str) -> dict[str, Any]:
    return {
        "commit": state.commit,
        "image_digest": state.image_digest,
        "ref": state.ref_name,
        "push_time": state.push_time,
        "deployment_id": state.deployment_id,
        "status": status,
    }


def environment_story(place: EnvironmentFacts, commit: str) -> dict[str, Any]:
    """The deployments of `commit` to one environment, and the later push that took the environment over."""
    deployments: dict[str, dict[str, Any]] = {}
    own_push_times: list[str] = []
    for record in sorted(place.history, key=lambda item: item.started_at):
        if record.commit == commit:
            own_push_times.append(record.push_time)
            deployments[record.deployment_id] = {
                "deployment_id": record.deployment_id,
                "status": record.outcome or "ENDED",
                "started_at": record.started_at,
                "ended_at": record.ended_at,
                "reason": None,
            }
    candidate = place.candidate
    if candidate is not None and candidate.commit == commit:
        own_push_times.append(candidate.push_time)
        key = candidate.deployment_id or "pending"
        entry = deployments.setdefault(
            key,
            {"deployment_id": candidate.deployment_id, "started_at": None, "ended_at": None, "reason": None},
        )
        entry["status"] = _candidate_status(candidate)
        entry["reason"] = candidate.gate_reason or candidate.outcome_reason
    replaced_by = None
    if own_push_times:
        own = max(own_push_times)
        later = [
            (state, status)
            for state, status in ((place.serving, "SERVING"), (candidate, None))
            if state is not None and state.commit != commit and state.push_time > own
        ]
        if later:
            state, status = later[0]
            replaced_by = _place(state, status or _candidate_status(state))
    serving = place.serving
    return {
        "environment": place.environment,
        "target": place.target,
        "serving_now": serving is not None and serving.commit == commit,
        "deployments": list(deployments.values()),
        "replaced_by": replaced_by,
    }


def _image(image: ImageFacts, commit: str, notices: tuple[NoticeRecord, ...]) -> dict[str, Any]:
    record = image.record
    verdict = None
    if image.image_digest is not None:
        verdict = {
            "verdict": record.verdict if record else None,
            "reasons": list(record.verdict_reasons) if record else [],
            "scanning": record.scanning if record else None,
            "top_findings": [finding.as_detail() for finding in top_findings(image.findings)],
        }
    return {
        "ecr_repository": image.ecr_repository,
        "builds": [_build(build) for build in image.builds],
        "skipped": skipped_builds(notices, image.ecr_repository),
        "image_digest": image.image_digest,
        "tags": sorted(image.tags),
        "pushed_at": image.pushed_at,
        "verdict": verdict,
        "environments": [environment_story(place, commit) for place in image.environments],
    }


def _notification(notice: NoticeRecord) -> dict[str, Any]:
    return {
        "time": notice.time,
        "event": notice.event,
        "status": notice.status,
        "headline": notice.headline,
        "ref": notice.ref,
        "channels": dict(notice.channels),
        "image_digest": notice.image_digest,
        "environment": notice.environment,
    }


def commit_story(facts: CommitFacts) -> dict[str, Any]:
    """The JSON document of one commit's story (docs/operations.md, "ecr-pipeline status")."""
    pushes = sorted(facts.pushes, key=lambda push: (push.push_time, push.push_id))
    return {
        "repository": facts.repository,
        "commit": facts.commit,
        "pushes": [
            {
                "ref_type": push.ref_type,
                "ref": push.ref_name,
                "author": push.author,
                "message": push.message,
                "push_time": push.push_time,
                "push_id": push.push_id,
            }
            for push in pushes
        ],
        "images": [_image(image, facts.commit, facts.notices) for image in facts.images],
        "notifications": [_notification(notice) for notice in sorted(facts.notices, key=lambda item: item.time)],
    }


# --- saying it -------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f" in {value:.0f}s" if value < 120 else f" in {value / 60:.1f}m"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _build_line(build: dict[str, Any]) -> list[str]:
    ref = f" ({build['ref']})" if build["ref"] else ""
    lines = [f"    build {build['build_id']}: {build['status']}{_seconds(build['duration_seconds'])}{ref}"]
    if build["superseded_by"]:
        newer = build["superseded_by"]
        lines.append(f"      superseded by build {newer['build_id']} (commit {(newer['commit'] or '?')[:12]})")
    lines += [
        f"      {label}: {url}" for label, url in (("log", build["log_url"]), ("console", build["console_url"])) if url
    ]
    return lines


def _verdict_lines(verdict: dict[str, Any]) -> list[str]:
    lines = [
        f"    verdict: {verdict['verdict'] or 'not decided yet'}"
        + (f" ({verdict['scanning']})" if verdict["scanning"] else "")
    ]
    lines += [f"      - {reason}" for reason in verdict["reasons"]]
    for finding in verdict["top_findings"]:
        fixed = f", fixed in {finding['fixed_in']}" if finding["fixed_in"] else ""
        package = f" in {finding['package']}" if finding["package"] else ""
        lines.append(f"      {finding['severity']} {finding['id']}{package}{fixed}")
    return lines


def _environment_lines(place: dict[str, Any]) -> list[str]:
    head = f"    {place['environment']} ({place['target']}):"
    if not place["deployments"]:
        return [f"{head} not deployed"]
    lines = [head + (" serving it now" if place["serving_now"] else "")]
    for deployment in place["deployments"]:
        when = deployment["ended_at"] or deployment["started_at"] or ""
        reason = f": {deployment['reason']}" if deployment["reason"] else ""
        at = f" at {when}" if when else ""
        lines.append(
            f"      deployment {deployment['deployment_id'] or '(not created)'} {deployment['status']}{at}{reason}"
        )
    newer = place["replaced_by"]
    if newer:
        lines.append(
            f"      replaced by {newer['commit'][:12]} ({newer['ref']}, pushed {newer['push_time']}):"
            f" deployment {newer['deployment_id'] or '(not created)'} {newer['status']}"
        )
    return lines


def _image_lines(image: dict[str, Any]) -> list[str]:
    lines = [f"  image {image['ecr_repository']}"]
    for build in image["builds"]:
        lines += _build_line(build)
    for skipped in image["skipped"]:
        lines.append(f"    no build ({skipped['ref']}): {skipped['reason']}")
    if not image["builds"] and not image["skipped"] and image["image_digest"] is None:
        lines.append("    no build and no image of this commit")
    if image["image_digest"]:
        lines.append(f"    digest {image['image_digest']}")
        lines.append(f"    tags: {', '.join(image['tags']) or '-'}")
    if image["verdict"]:
        lines += _verdict_lines(image["verdict"])
    for place in image["environments"]:
        lines += _environment_lines(place)
    return lines


def render_story(story: dict[str, Any]) -> str:
    """One commit's story as text: what a person reads at the end of `make demo`."""
    lines = [f"Commit {story['commit']} of {story['repository']}"]
    for push in story["pushes"]:
        message = _first_line(push["message"])
        lines.append(
            f"  pushed to {push['ref_type']} {push['ref']} by {push['author'] or 'unknown'} at {push['push_time']}"
            + (f": {message}" if message else "")
        )
    if not story["pushes"]:
        lines.append("  no push of this commit is recorded")
    for image in story["images"]:
        lines += _image_lines(image)
    lines.append(f"  notifications ({len(story['notifications'])}):")
    for notice in story["notifications"]:
        channels = ", ".join(f"{name} {result}" for name, result in sorted(notice["channels"].items()))
        lines.append(f"    {notice['time']} {notice['headline'] or notice['event']} [{notice['status']}]: {channels}")
    return "\n".join(lines)
