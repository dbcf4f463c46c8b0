"""start_build: a CodeCommit push becomes at most one CodeBuild build per configured image, at
once or when its branch's quiet window ends (core/build_window.py).

Decisions (which refs, which files, which push is newer) are the pure functions at the top;
`handle_push` and `settle` apply them through the adapters in `BuildServices`, and both start
an image's build through `start_image`.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from ecr_pipeline.adapters.codebuild import BuildRequest, CodeBuild
from ecr_pipeline.adapters.codecommit import CodeCommit, clone_url
from ecr_pipeline.adapters.delayed_queue import DelayedQueue
from ecr_pipeline.adapters.ecr import Ecr, repository_uri
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.config import ImageConfig, PipelineConfig, RepositoryConfig
from ecr_pipeline.core.build_window import (
    REASON_NEWER_PUSH,
    REASON_NOTHING_PENDING,
    REASON_QUEUED,
    SettleRequest,
    images_to_build,
    settle_body,
)
from ecr_pipeline.core.filters import paths_selected, ref_selected
from ecr_pipeline.core.naming import build_tag
from ecr_pipeline.core.trust import Home
from ecr_pipeline.economy import BuildEconomyRecord, EconomyDecision
from ecr_pipeline.events.codecommit import RefChange
from ecr_pipeline.events.pipeline import BuildSkipped, BuildStarted, PromotionRequested, Subject
from ecr_pipeline.outcomes import BuildDecision, Outcome, PushStatus, SettleStatus
from ecr_pipeline.records import (
    BranchBuild,
    BranchState,
    BuildRecord,
    PushOrdered,
    PushRecord,
    is_newer_push,
    is_same_push,
)

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
    # The quiet-window queue; without it every push builds at once.
    window_queue: DelayedQueue | None = None


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


def idempotency_token(push: PushOrdered, image: ImageConfig) -> str:
    """CodeBuild starts one build per token: a redelivered push starts nothing new."""
    return hashlib.sha256(f"{push.push_id}|{image.ecr_repository}".encode()).hexdigest()


def build_environment(
    push: PushRecord, region: str, repository: RepositoryConfig, image: ImageConfig, image_uri: str
) -> dict[str, str]:
    """The build's environment overrides; they appear in CodeBuild events, so no secret goes here."""
    return {
        "ECR_REPOSITORY_URI": image_uri,
        "IMAGE_TAG": build_tag(push.commit),
        "DOCKERFILE": image.dockerfile,
        "BUILD_CONTEXT": image.context,
        "SOURCE_REPOSITORY": repository.name,
        "SOURCE_REF_TYPE": push.ref_type,
        "SOURCE_BRANCH": push.ref_name,
        "SOURCE_URL": clone_url(region, repository.name),
    }


def window_queue(change: RefChange, repository: RepositoryConfig, services: BuildServices) -> DelayedQueue | None:
    """Where a push that moves an existing branch waits for the branch's quiet window
    (core/build_window.py); None when this push builds at once."""
    if change.is_branch and has_previous_commit(change) and repository.build_window > 0:
        return services.window_queue
    return None


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
    window = window_queue(change, repository, services)
    if change.is_branch and repository.build_window > 0:
        # Every push of a windowed branch is its head until a newer one: what a settle builds at.
        services.ledger.record_branch_head(push)

    # Path filters apply to branch pushes with a known previous commit; a new branch or a tag builds.
    changed_files: list[str] | None = None
    if change.is_branch and change.old_commit_id and has_previous_commit(change):
        changed_files = services.codecommit.changed_files(repository.name, change.old_commit_id, change.commit_id)

    origin = Home(change.account, change.region)
    outcomes = []
    with services.publisher.batch():
        for image in repository.images:
            subject = Subject.of_push(push, image.ecr_repository, repository_uri=image_uri(origin, image))
            if changed_files is not None and not paths_selected(changed_files, image.paths, image.paths_ignore):
                services.publisher.publish(
                    BuildSkipped(subject, REASON_NO_MATCHING_PATHS, changed_files=len(changed_files))
                )
                record_decision(services, push, image.ecr_repository, "filtered")
                outcomes.append(ImageOutcome(image.ecr_repository, "skipped", REASON_NO_MATCHING_PATHS))
            elif window:
                # Refused when a newer push that touched the image is pending: its build covers this one.
                pending, replaced = services.ledger.mark_pending(image.ecr_repository, push)
                record_decision(services, push, image.ecr_repository, "queued" if pending else "coalesced")
                if replaced is not None:
                    coalesce(replaced, push, image.ecr_repository, services)
                outcomes.append(ImageOutcome(image.ecr_repository, "queued", REASON_QUEUED))
            else:
                outcomes.append(start_image(push, repository, image, origin, services))
    if window:
        # Sent even when this push touched no image: an earlier push's pending build waits for it.
        window.send(settle_body(push), repository.build_window)
    return PushOutcome(repository.name, change.ref_name, images=tuple(outcomes))


def settle(
    request: SettleRequest, config: PipelineConfig, origin: Home, services: BuildServices
) -> Outcome[SettleStatus]:
    """A branch's quiet window ended: build its pending images at its head (core/build_window.py)."""
    facts: dict[str, Any] = {"repository": request.repository, "branch": request.branch, "push_id": request.push_id}
    repository = config.repository(request.repository)
    if repository is None:
        return Outcome("ignored", f"repository {request.repository} is not in pipeline.yaml", facts=facts)
    state = services.ledger.branch_state(repository.name, request.branch)
    head = state.head
    if head is None:
        return Outcome("ignored", f"no push of branch {request.branch} is recorded", facts=facts)
    own_window = is_same_push(head, request)
    ready = images_to_build(state, request, repository)
    if not ready and not own_window:
        return Outcome("waiting", REASON_NEWER_PUSH, facts={**facts, "head_push_id": head.push_id})
    outcomes = []
    with services.publisher.batch():
        for image in ready:
            outcomes.append(start_image(head, repository, image, origin, services, state))
            services.ledger.mark_built(repository.name, head.ref_name, image.ecr_repository, head)
            waiting = state.pending.get(image.ecr_repository)
            if waiting is not None and not is_same_push(waiting, head):
                # The newest push that touched the image is not the head (a later push touched other paths).
                coalesce(waiting, head, image.ecr_repository, services)
    if own_window:
        services.ledger.mark_settled(head)
    images = [{key: value for key, value in image._asdict().items() if value not in (None, "")} for image in outcomes]
    reason = None if outcomes else REASON_NOTHING_PENDING
    return Outcome("settled", reason, facts={**facts, "commit": head.commit, "images": images})


def record_decision(
    services: BuildServices,
    push: PushRecord,
    ecr_repository: str,
    decision: EconomyDecision,
    build_id: str | None = None,
    by: str | None = None,
) -> None:
    """The build economy of the push (economy.py): what was decided for this image of it."""
    services.ledger.record_decision(economy_record(push, ecr_repository, decision, build_id, by))


def economy_record(
    push: PushOrdered | PushRecord,
    ecr_repository: str,
    decision: EconomyDecision,
    build_id: str | None = None,
    by: str | None = None,
    repository: str = "",
    ref_name: str = "",
) -> BuildEconomyRecord:
    known = push if isinstance(push, PushRecord) else None
    return BuildEconomyRecord(
        repository=known.repository if known else repository,
        ref_type=known.ref_type if known else "branch",
        ref_name=known.ref_name if known else ref_name,
        commit=getattr(push, "commit", ""),
        push_time=push.push_time,
        push_id=push.push_id,
        ecr_repository=ecr_repository,
        decision=decision,
        build_id=build_id,
        by=by,
    )


def coalesce(waiting: PushOrdered, into: PushRecord, ecr_repository: str, services: BuildServices) -> None:
    """A push still waiting for the branch's quiet window is folded into the build of a later push
    (`into`): it never gets a build of its own."""
    record = economy_record(waiting, ecr_repository, "queued", repository=into.repository, ref_name=into.ref_name)
    services.ledger.mark_decision(record, "coalesced", into.push_id, ("queued",))


def image_uri(origin: Home, image: ImageConfig) -> str:
    return repository_uri(origin.account, origin.region, image.ecr_repository)


def start_image(
    push: PushRecord,
    repository: RepositoryConfig,
    image: ImageConfig,
    origin: Home,
    services: BuildServices,
    branch_state: BranchState | None = None,
) -> ImageOutcome:
    """Build `push`'s commit for one image (or promote its existing image); on a branch, the build
    becomes the branch's newest and, with supersede, stops the older one still running. A settle
    passes the branch's state it has read, so the newest build is not read again."""
    uri = image_uri(origin, image)
    subject = Subject.of_push(push, image.ecr_repository, repository_uri=uri)
    existing_digest = services.ecr.find_image_digest(image.ecr_repository, build_tag(push.commit))
    if existing_digest:
        services.publisher.publish(
            PromotionRequested(subject._replace(image_digest=existing_digest), REASON_IMAGE_EXISTS)
        )
        record_decision(services, push, image.ecr_repository, "reused")
        return ImageOutcome(image.ecr_repository, "promotion", REASON_IMAGE_EXISTS)

    branch = push.ref_type == "branch"
    supersede = branch and repository.supersede
    if supersede:
        newest = (
            branch_state.builds.get(image.ecr_repository)
            if branch_state is not None
            else services.ledger.newest_branch_build(repository.name, push.ref_name, image.ecr_repository)
        )
        if newest and is_newer_push(newest, push):
            services.publisher.publish(BuildSkipped(subject, REASON_SUPERSEDED))
            record_decision(services, push, image.ecr_repository, "superseded", by=newest.push_id)
            return ImageOutcome(image.ecr_repository, "skipped", REASON_SUPERSEDED)

    build_id = services.codebuild.start_build(
        BuildRequest(
            project=services.project,
            source_location=clone_url(origin.region, repository.name),
            source_version=push.commit,
            environment=build_environment(push, origin.region, repository, image, uri),
            idempotency_token=idempotency_token(push, image),
            buildspec=image.buildspec,
        )
    )
    services.ledger.record_build(
        BuildRecord(
            build_id=build_id,
            repository=repository.name,
            ref_type=push.ref_type,
            ref_name=push.ref_name,
            commit=push.commit,
            ecr_repository=image.ecr_repository,
            push_time=push.push_time,
            push_id=push.push_id,
        )
    )
    # Recorded before the branch is claimed, so that a newer push's supersede finds it started.
    record_decision(services, push, image.ecr_repository, "started", build_id)

    superseded_build_id = None
    # A windowed branch needs its newest build recorded even without supersede: where pending ends.
    if supersede or (branch and repository.build_window > 0):
        this_build = BranchBuild(build_id, push.commit, push.push_time, push.push_id)
        claimed, other = services.ledger.claim_branch_build(
            repository.name, push.ref_name, image.ecr_repository, this_build
        )
        other = other if other and other.build_id != build_id else None
        if supersede and claimed and other and services.codebuild.is_running(other.build_id):
            # Marked before stopping, so the STOPPED event is told as superseded, not failed.
            services.ledger.mark_superseded(other.build_id, build_id)
            services.codebuild.stop_build(other.build_id)
            superseded_build_id = other.build_id
            stopped = economy_record(other, image.ecr_repository, "started", None, None, repository.name, push.ref_name)
            services.ledger.mark_decision(stopped, "superseded", push.push_id, ("started",))
        elif supersede and not claimed and other:
            # A newer push claimed the branch while this build was starting: this one gives way.
            services.ledger.mark_superseded(build_id, other.build_id)
            services.codebuild.stop_build(build_id)
            services.publisher.publish(BuildSkipped(subject, REASON_SUPERSEDED, build_id=build_id))
            record_decision(services, push, image.ecr_repository, "superseded", build_id, by=other.push_id)
            return ImageOutcome(image.ecr_repository, "skipped", REASON_SUPERSEDED, build_id=build_id)

    services.publisher.publish(BuildStarted(subject, build_id, services.project, superseded_build_id))
    return ImageOutcome(image.ecr_repository, "started", build_id=build_id, superseded_build_id=superseded_build_id)
