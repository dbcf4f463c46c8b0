"""start_build: a CodeCommit push becomes at most one CodeBuild build per configured image.

Decisions (which refs, which files, which push is newer) are the pure functions at the top;
`handle_push` applies them through the adapters in `BuildServices`.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from ecr_pipeline.adapters.codebuild import BuildRequest, CodeBuild
from ecr_pipeline.adapters.codecommit import CodeCommit, clone_url
from ecr_pipeline.adapters.ecr import Ecr, repository_uri
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.config import ImageConfig, PipelineConfig, RepositoryConfig
from ecr_pipeline.core.filters import paths_selected, ref_selected
from ecr_pipeline.core.naming import build_tag
from ecr_pipeline.events.codecommit import RefChange
from ecr_pipeline.events.pipeline import BuildSkipped, BuildStarted, PromotionRequested, Subject
from ecr_pipeline.outcomes import BuildDecision, Outcome, PushStatus
from ecr_pipeline.records import BranchBuild, BuildRecord, PushRecord, is_newer_push

REASON_NO_MATCHING_PATHS = "no changed file matches the image's paths"
REASON_SUPERSEDED = "superseded by a newer push of the branch"
REASON_IMAGE_EXISTS = "an image of this commit already exists: promoted without a build"

# git writes an all-zero id for "no commit" (a new ref's old side).
_NULL_COMMIT = "0" * 40


class ImageOutcome(NamedTuple):
    ecr_repository: str
    action: BuildDecision
    reason: str = ""
    build_id: str | None = None
    superseded_build_id: str | None = None


class PushOutcome(NamedTuple):
    repository: str
    ref: str
    ignored_reason: str | None = None
    images: tuple[ImageOutcome, ...] = ()

    @property
    def status(self) -> PushStatus:
        return "ignored" if self.ignored_reason else "handled"

    def result(self) -> Outcome[PushStatus]:
        facts: dict[str, Any] = {"repository": self.repository, "ref": self.ref}
        if not self.ignored_reason:
            facts["images"] = [
                {key: value for key, value in image._asdict().items() if value not in (None, "")}
                for image in self.images
            ]
        return Outcome(self.status, self.ignored_reason, facts=facts)


class BuildServices(NamedTuple):
    codecommit: CodeCommit
    codebuild: CodeBuild
    ecr: Ecr
    ledger: Ledger
    publisher: EventPublisher
    project: str


# --- decisions ---------------------------------------------------------------------------


def push_ignore_reason(change: RefChange, config: PipelineConfig) -> str | None:
    """Why this ref change starts nothing, or None when it is a push to build."""
    if change.action == "referenceDeleted":
        return f"{change.ref_type} {change.ref_name} was deleted"
    if change.action not in ("referenceCreated", "referenceUpdated"):
        return f"event {change.action} is not a push of a branch or tag"
    repository = config.repository(change.repository)
    if repository is None:
        return f"repository {change.repository} is not in pipeline.yaml"
    if change.is_branch and not ref_selected(change.ref_name, repository.branches, repository.branches_ignore):
        return f"branch {change.ref_name} is outside the branch filters of {change.repository}"
    if not change.is_branch and not ref_selected(change.ref_name, repository.tags):
        return f"tag {change.ref_name} is outside the release tag filters of {change.repository}"
    return None


def has_previous_commit(change: RefChange) -> bool:
    return bool(change.old_commit_id) and change.old_commit_id != _NULL_COMMIT


def idempotency_token(change: RefChange, image: ImageConfig) -> str:
    """CodeBuild starts one build per token: a redelivered push starts nothing new."""
    return hashlib.sha256(f"{change.push_id}|{image.ecr_repository}".encode()).hexdigest()


def build_environment(
    change: RefChange, repository: RepositoryConfig, image: ImageConfig, image_uri: str
) -> dict[str, str]:
    """The build's environment overrides; they appear in CodeBuild events, so no secret goes here."""
    return {
        "ECR_REPOSITORY_URI": image_uri,
        "IMAGE_TAG": build_tag(change.commit_id) if change.commit_id else "",
        "DOCKERFILE": image.dockerfile,
        "BUILD_CONTEXT": image.context,
        "SOURCE_REPOSITORY": repository.name,
        "SOURCE_REF_TYPE": change.ref_type,
        "SOURCE_BRANCH": change.ref_name,
        "SOURCE_URL": clone_url(change.region, repository.name),
    }


# --- the push ----------------------------------------------------------------------------


def handle_push(change: RefChange, config: PipelineConfig, services: BuildServices) -> PushOutcome:
    reason = push_ignore_reason(change, config)
    repository = config.repository(change.repository)
    if reason or repository is None or change.commit_id is None:
        return PushOutcome(change.repository, change.ref_name, ignored_reason=reason or "no commit")

    commit = services.codecommit.get_commit(repository.name, change.commit_id)
    push = PushRecord(
        repository=repository.name,
        ref_type=change.ref_type,
        ref_name=change.ref_name,
        commit=change.commit_id,
        push_time=change.push_time,
        push_id=change.push_id,
        author=commit.author,
        message=commit.message,
    )
    services.ledger.record_push(push)

    # Path filters apply to branch pushes with a known previous commit; a new branch or a tag builds.
    changed_files: list[str] | None = None
    if change.is_branch and change.old_commit_id and has_previous_commit(change):
        changed_files = services.codecommit.changed_files(repository.name, change.old_commit_id, change.commit_id)

    outcomes = [_handle_image(change, repository, image, push, changed_files, services) for image in repository.images]
    return PushOutcome(repository.name, change.ref_name, images=tuple(outcomes))


def _handle_image(
    change: RefChange,
    repository: RepositoryConfig,
    image: ImageConfig,
    push: PushRecord,
    changed_files: list[str] | None,
    services: BuildServices,
) -> ImageOutcome:
    image_uri = repository_uri(change.account, change.region, image.ecr_repository)
    subject = Subject.of_push(push, image.ecr_repository, repository_uri=image_uri)

    if changed_files is not None and not paths_selected(changed_files, image.paths, image.paths_ignore):
        services.publisher.publish(BuildSkipped(subject, REASON_NO_MATCHING_PATHS, changed_files=len(changed_files)))
        return ImageOutcome(image.ecr_repository, "skipped", REASON_NO_MATCHING_PATHS)

    existing_digest = services.ecr.find_image_digest(image.ecr_repository, build_tag(push.commit))
    if existing_digest:
        services.publisher.publish(
            PromotionRequested(subject._replace(image_digest=existing_digest), REASON_IMAGE_EXISTS)
        )
        return ImageOutcome(image.ecr_repository, "promotion", REASON_IMAGE_EXISTS)

    supersede = change.is_branch and repository.supersede
    if supersede:
        newest = services.ledger.newest_branch_build(repository.name, change.ref_name, image.ecr_repository)
        if newest and is_newer_push(newest, push):
            services.publisher.publish(BuildSkipped(subject, REASON_SUPERSEDED))
            return ImageOutcome(image.ecr_repository, "skipped", REASON_SUPERSEDED)

    build_id = services.codebuild.start_build(
        BuildRequest(
            project=services.project,
            source_location=clone_url(change.region, repository.name),
            source_version=push.commit,
            environment=build_environment(change, repository, image, image_uri),
            idempotency_token=idempotency_token(change, image),
            buildspec=image.buildspec,
        )
    )
    services.ledger.record_build(
        BuildRecord(
            build_id=build_id,
            repository=repository.name,
            ref_type=change.ref_type,
            ref_name=change.ref_name,
            commit=push.commit,
            ecr_repository=image.ecr_repository,
            push_time=push.push_time,
            push_id=push.push_id,
        )
    )

    superseded_build_id = None
    if supersede:
        this_build = BranchBuild(build_id, push.commit, push.push_time, push.push_id)
        claimed, other = services.ledger.claim_branch_build(
            repository.name, change.ref_name, image.ecr_repository, this_build
        )
        if claimed and other and other.build_id != build_id and services.codebuild.is_running(other.build_id):
            # Marked before stopping, so the STOPPED event is told as superseded, not failed.
            services.ledger.mark_superseded(other.build_id, build_id)
            services.codebuild.stop_build(other.build_id)
            superseded_build_id = other.build_id
        elif not claimed and other and other.build_id != build_id:
            # A newer push claimed the branch while this build was starting: this one gives way.
            services.ledger.mark_superseded(build_id, other.build_id)
            services.codebuild.stop_build(build_id)
            services.publisher.publish(BuildSkipped(subject, REASON_SUPERSEDED, build_id=build_id))
            return ImageOutcome(image.ecr_repository, "skipped", REASON_SUPERSEDED, build_id=build_id)

    services.publisher.publish(BuildStarted(subject, build_id, services.project, superseded_build_id))
    return ImageOutcome(image.ecr_repository, "started", build_id=build_id, superseded_build_id=superseded_build_id)
