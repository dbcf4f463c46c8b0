"""Lenient, typed reading of what notify tells: the pipeline's own event details, and a build's source.

notify tells what an event carried and leaves the rest out, so a reader never raises: a field
of the wrong type reads as unknown (empty). The results are NamedTuples, so the composers in
words.py build a `Message` from checked fields, not from a spread dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ecr_pipeline.config import SEVERITIES
from ecr_pipeline.core.naming import commit_of_build_tag
from ecr_pipeline.events.codebuild import BuildStateChange
from ecr_pipeline.notify.model import Finding
from ecr_pipeline.records import BuildRecord
from ecr_pipeline.text import first_line


def text(detail: Mapping[str, Any], key: str) -> str:
    value = detail.get(key)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def texts(detail: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = detail.get(key)
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if not isinstance(value, list):
        return ()
    return tuple(str(item).strip() for item in value if isinstance(item, str | int | float) and str(item).strip())


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
    return tuple(
        Finding(
            id=text(item, "id"),
            severity=text(item, "severity"),
            package=text(item, "package"),
            fixed_in=text(item, "fixed_in"),
            url=text(item, "url"),
        )
        for item in value
        if isinstance(item, dict) and text(item, "id")
    )


def _allowlisted(value: Any) -> str:
    """The CVE ids the allowlist removed: "Scan Verdict" writes one object per entry (`id`, ...)."""
    if not isinstance(value, list):
        return ""
    ids = [text(entry, "id") if isinstance(entry, dict) else str(entry).strip() for entry in value]
    return ", ".join(found for found in ids if found)


def _first_push(detail: Mapping[str, Any]) -> Mapping[str, Any]:
    pushes = detail.get("pushes")
    if isinstance(pushes, list) and pushes and isinstance(pushes[0], dict):
        return pushes[0]
    return {}


def _refs_of_pushes(detail: Mapping[str, Any]) -> str:
    pushes = detail.get("pushes")
    if not isinstance(pushes, list):
        return ""
    refs = [text(push, "ref") for push in pushes if isinstance(push, dict) and text(push, "ref")]
    return ", ".join(dict.fromkeys(refs))


class PipelineDetail(NamedTuple):
    """Every field notify reads from a pipeline event's detail; empty when absent or malformed.

    The push fields fall back to the detail's first `pushes[]` entry (Image Promoted carries its
    pushes there), and the commit to the one named by the `image_tag` build tag.
    """

    repository: str
    ref_type: str
    ref: str
    commit: str
    push_id: str
    author: str
    commit_message: str  # the first line
    ecr_repository: str
    image_digest: str
    image_tags: tuple[str, ...]  # Image Promoted's added `tags`, else the image's `image_tags`
    environment: str
    deployment_id: str
    build_id: str
    reason: str
    superseded_build_id: str  # Build Started
    changed_files: str  # Build Skipped
    verdict: str  # Scan Verdict, upper case
    given_verdict: object  # as the event wrote it, for the error that names it
    scanning: str
    counts: tuple[tuple[str, int], ...]
    top_findings: tuple[Finding, ...]
    reasons: tuple[str, ...]
    allowlisted: str  # a list of CVE ids, or how many findings the allowlist removed
    refs_of_pushes: str  # Image Promoted
    superseded_tags: tuple[str, ...]
    failed_tags: tuple[str, ...]
    tag: str  # Promotion Failed
    strategy: str  # the deployment events: codedeploy (also when absent) or ecs
    application: str  # strategy codedeploy
    deployment_group: str
    cluster: str  # the ECS service, strategy ecs
    service: str
    serving_commit: str  # Deployment Failed and Rolled Back: what serves now, empty before the first deployment
    serving_image_digest: str


def read_pipeline_detail(detail: Mapping[str, Any]) -> PipelineDetail:
    push = _first_push(detail)
    return PipelineDetail(
        repository=text(detail, "repository") or text(push, "repository"),
        ref_type=text(detail, "ref_type") or text(push, "ref_type"),
        ref=text(detail, "ref") or text(push, "ref"),
        commit=(text(detail, "commit") or text(push, "commit") or commit_of_build_tag(text(detail, "image_tag")) or ""),
        push_id=text(detail, "push_id") or text(push, "push_id"),
        author=text(detail, "author") or text(push, "author"),
        commit_message=first_line(text(detail, "message") or text(push, "message")),
        ecr_repository=text(detail, "ecr_repository"),
        image_digest=text(detail, "image_digest"),
        image_tags=texts(detail, "tags") or texts(detail, "image_tags"),
        environment=text(detail, "environment"),
        deployment_id=text(detail, "deployment_id"),
        build_id=text(detail, "build_id"),
        reason=text(detail, "reason"),
        superseded_build_id=text(detail, "superseded_build_id"),
        changed_files=text(detail, "changed_files"),
        verdict=text(detail, "verdict").upper(),
        given_verdict=detail.get("verdict"),
        scanning=text(detail, "scanning"),
        counts=_counts(detail.get("counts")),
        top_findings=_findings(detail.get("top_findings")),
        reasons=texts(detail, "reasons"),
        allowlisted=_allowlisted(detail.get("allowlisted")) or text(detail, "allowlisted"),
        refs_of_pushes=_refs_of_pushes(detail),
        superseded_tags=texts(detail, "superseded_tags"),
        failed_tags=texts(detail, "failed_tags"),
        tag=text(detail, "tag"),
        strategy=text(detail, "strategy"),
        application=text(detail, "application"),
        deployment_group=text(detail, "deployment_group"),
        cluster=text(detail, "cluster"),
        service=text(detail, "service"),
        serving_commit=text(detail, "serving_commit"),
        serving_image_digest=text(detail, "serving_image_digest"),
    )


class BuildSource(NamedTuple):
    """What a CodeBuild build built, from the one fallback chain below."""

    repository: str
    commit: str
    ref_type: str
    ref: str
    ecr_repository: str
    superseded_by: str


def _last_path_segment(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] if "/" in url else ""


def _known(*values: Any) -> str:
    return next((value for value in values if isinstance(value, str) and value), "")


def read_build_source(
    change: BuildStateChange, record: BuildRecord | None, push_ref_type: str = "", push_ref: str = ""
) -> BuildSource:
    """The one fallback chain for a build's facts: the build's environment (start_build set it),
    then the ledger's build record, then CodeBuild's own source fields, then the push."""
    env = change.environment
    record = record or BuildRecord(build_id=change.build_id)
    return BuildSource(
        repository=_known(
            env.get("SOURCE_REPOSITORY"),
            record.repository,
            _last_path_segment(env.get("SOURCE_URL", "")),
            _last_path_segment(change.source_location),
        ),
        commit=_known(commit_of_build_tag(env.get("IMAGE_TAG")), record.commit, change.source_version),
        ref_type=_known(env.get("SOURCE_REF_TYPE"), record.ref_type, push_ref_type),
        ref=_known(env.get("SOURCE_BRANCH"), record.ref_name, push_ref),
        ecr_repository=_known(record.ecr_repository, env.get("ECR_REPOSITORY_URI", "").partition("/")[2]),
        superseded_by=_known(record.superseded_by),
    )
