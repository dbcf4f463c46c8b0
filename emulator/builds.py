"""A CodeBuild build as the emulator runs it: the project, the build, and its steps in place of docker.

Emulated: instead of running Docker, a build checks the Dockerfile is in the commit and pushes
an image manifest for the commit to ECR (moto's put_image through the front, so the PUSH event
follows as on AWS). The same commit always gives the same manifest, hence the same digest.

The build runs as the project's service role, checked as IAM would: codecommit:GitPull for the
source, ecr:GetAuthorizationToken for the login, ecr:BatchGetImage/GetDownloadUrlForLayer for
the layer cache (a denied cache pull is only buildx's warning), and the push actions on the
target repository. A build whose role may not pull its source or push fails in that phase with
the denial in its phase context, as CodeBuild's would; every missing permission is a gap of the role.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from emulator.codecommit import GitError, GitRepository
from emulator.front import ApiError
from emulator.iam import Request, Statement, denial_message, is_allowed, policy_statements, principal_arn
from emulator.template import ACCOUNT_ID, REGION, Template, build_role_id, build_role_policies, role_name

if TYPE_CHECKING:
    from emulator.runtime import BuildRuntime

# What `docker push` asks ECR for, in the order it asks (the first refused one is what docker reports).
PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
# What pulling the registry layer cache (`--cache-from type=registry`) asks ECR for.
PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


@dataclass(frozen=True)
class BuildRole:
    """The IAM role builds run as (the project's ServiceRole) and what its policies allow."""

    logical_id: str
    name: str
    statements: tuple[Statement, ...]
    complete: bool


def build_role(template: Template) -> BuildRole | None:
    """The build role from template.yaml; None when the project names no role of the template."""
    role_id = build_role_id(template)
    if role_id is None:
        return None
    statements, complete = policy_statements(build_role_policies(template))
    return BuildRole(role_id, role_name(template, role_id), tuple(statements), complete)


@dataclass(frozen=True)
class Project:
    name: str
    source_type: str
    source_location: str
    environment_type: str
    image: str
    compute_type: str
    privileged: bool
    variables: tuple[tuple[str, str, str], ...]  # (name, value, type)
    timeout_minutes: int
    queued_timeout_minutes: int
    log_group: str
    # The project's inline buildspec (Source.BuildSpec): what a build runs unless StartBuild overrides it.
    buildspec: str = ""

    @property
    def arn(self) -> str:
        return f"arn:aws:codebuild:{REGION}:{ACCOUNT_ID}:project/{self.name}"


@dataclass
class Build:
    id: str
    number: int
    project: Project
    source_location: str
    source_version: str
    variables: list[dict[str, str]]
    token: str | None
    fingerprint: str
    started: float
    status: str = "IN_PROGRESS"
    phase: str = "SUBMITTED"
    ended: float | None = None
    resolved_commit: str | None = None
    reason: str = ""
    image_digest: str | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    # StartBuild's buildspecOverride: inline YAML or a path in the source.
    buildspec_override: str = ""
    # Docker mode: the phases as the buildspec ran them (BatchGetBuilds' shape), and where its log is.
    ran_phases: list[dict[str, Any]] | None = None
    log_path: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:codebuild:{REGION}:{ACCOUNT_ID}:build/{self.id}"

    @property
    def completed(self) -> bool:
        return self.status != "IN_PROGRESS"

    def variable(self, name: str) -> str:
        for variable in self.variables:
            if variable["name"] == name:
                return variable["value"]
        return ""

    def log_stream(self) -> str:
        return self.id.split(":", 1)[1]


def _clean(value: Any) -> str:
    return "" if value is None else str(value)


def project_from_template(properties: dict[str, Any]) -> Project:
    """A CodeBuild project from the resolved properties of an AWS::CodeBuild::Project resource."""
    environment = properties.get("Environment") or {}
    source = properties.get("Source") or {}
    logs = ((properties.get("LogsConfig") or {}).get("CloudWatchLogs")) or {}
    return Project(
        name=_clean(properties.get("Name")),
        source_type=_clean(source.get("Type") or "CODECOMMIT"),
        source_location=_clean(source.get("Location")),
        environment_type=_clean(environment.get("Type") or "LINUX_CONTAINER"),
        image=_clean(environment.get("Image")),
        compute_type=_clean(environment.get("ComputeType")),
        privileged=bool(environment.get("PrivilegedMode", False)),
        variables=tuple(
            (_clean(item.get("Name")), _clean(item.get("Value")), _clean(item.get("Type") or "PLAINTEXT"))
            for item in environment.get("EnvironmentVariables") or []
        ),
        timeout_minutes=int(properties.get("TimeoutInMinutes", 60)),
        queued_timeout_minutes=int(properties.get("QueuedTimeoutInMinutes", 480)),
        log_group=_clean(logs.get("GroupName") or f"/aws/codebuild/{properties.get('Name')}"),
        buildspec=_clean(source.get("BuildSpec")),
    )


def image_manifest(repository: str, commit: str, dockerfile: bytes) -> str:
    """A deterministic Docker image manifest for a commit: same commit, same manifest, same digest."""

    def digest(*parts: str | bytes) -> str:
        hasher = hashlib.sha256()
        for part in parts:
            hasher.update(part.encode() if isinstance(part, str) else part)
        return "sha256:" + hasher.hexdigest()

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1457,
                "digest": digest("config", repository, commit),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 3_370_706,
                    "digest": digest("base", dockerfile),
                },
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 48_213,
                    "digest": digest("app", repository, commit),
                },
            ],
        },
        sort_keys=True,
    )


def dockerfile_at(repository: GitRepository, commit: str, path: str) -> bytes | None:
    """The Dockerfile a build of `commit` reads (`DOCKERFILE`, from the source root), or None."""
    try:
        return repository.blob_at(commit, path or "Dockerfile")
    except GitError:
        return None


def commit_manifest(repository: GitRepository, commit: str, ecr_repository: str, dockerfile_path: str) -> str | None:
    """The manifest a build of `commit` pushes to `ecr_repository`; None when the commit lacks the Dockerfile."""
    dockerfile = dockerfile_at(repository, commit, dockerfile_path)
    return None if dockerfile is None else image_manifest(ecr_repository, commit, dockerfile)


class BuildSteps:
    """What a build does once provisioned, as the build role: clone, log in, build, push."""

    def __init__(self, runtime: BuildRuntime) -> None:
        self._runtime = runtime
        self._role: BuildRole | None = None
        self._role_read = False

    def _role_of_builds(self) -> BuildRole | None:
        if not self._role_read and self._runtime.template is not None:
            self._role = build_role(self._runtime.template)
            self._role_read = True
            if self._role is not None and not self._role.complete:
                self._runtime.mark_unchecked_policy(self._role.logical_id)
        return self._role

    def denied(self, build: Build, actions: tuple[str, ...], resource: str) -> str | None:
        """AWS's refusal of the first action the build role may not take (every one is a gap), or None."""
        role = self._role_of_builds()
        if role is None or not role.complete:
            return None
        refusal = None
        for action in actions:
            if is_allowed(list(role.statements), action, resource):
                continue
            self._runtime.record_permission_gap(role.logical_id, action, resource)
            if refusal is None:
                # CodeBuild's session name for the role is AWSCodeBuild-<build uuid>.
                principal = principal_arn(role.name, f"AWSCodeBuild-{build.id.split(':', 1)[-1]}")
                refusal = denial_message(principal, Request(action, resource))
        return None if self._runtime.permission_mode == "report" else refusal

    def run(self, build: Build, injected_failure: Callable[[str], str | None]) -> str | None:
        """The build proper: why it failed, or None when its image is in ECR (and `image_digest` set).

        Each step moves `build.phase` on first, so a failure is reported in the phase it happened in.
        """
        repositories = self._runtime.git_repositories
        name = build.source_location.rstrip("/").rsplit("/", 1)[-1]
        repository = repositories.get(name)
        build.phase = "DOWNLOAD_SOURCE"
        if repository is None:
            return f"source {build.source_location} is not a repository of the emulator"
        refusal = self.denied(build, ("codecommit:GitPull",), f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{name}")
        if refusal:
            return f"ACCESS_DENIED: git clone of {name}: {refusal}"
        try:
            build.resolved_commit = repository.resolve(build.source_version or repository.default_branch)
        except ApiError:
            return f"source version {build.source_version} does not exist"
        build.phase = "PRE_BUILD"
        refusal = self.denied(build, ("ecr:GetAuthorizationToken",), "*")
        if refusal:
            return f"aws ecr get-login-password: AccessDeniedException: {refusal}"
        build.phase = "BUILD"
        dockerfile_path = build.variable("DOCKERFILE") or "Dockerfile"
        dockerfile = dockerfile_at(repository, build.resolved_commit, dockerfile_path)
        if dockerfile is None:
            return f"docker build: {dockerfile_path} not found in {build.resolved_commit[:12]}"
        instructions = [
            line.strip().split(None, 1)[0].upper()
            for line in dockerfile.decode(errors="replace").splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        if "FROM" not in instructions:
            return f"docker build: {dockerfile_path} has no FROM instruction"
        injected = injected_failure(build.resolved_commit)
        if injected is not None:
            return injected
        uri = build.variable("ECR_REPOSITORY_URI")
        tag = build.variable("IMAGE_TAG")
        registry, _, ecr_repository = uri.partition("/")
        repository_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{ecr_repository}"
        if build.variable("CACHE_TAG") and ecr_repository:
            # buildx only warns when it may not import the cache; exporting it is a push, and fails the build.
            self.denied(build, PULL_ACTIONS, repository_arn)
            refusal = self.denied(build, PUSH_ACTIONS, repository_arn)
            if refusal:
                return f"docker buildx build: exporting cache to {uri}: denied: {refusal}"
        build.phase = "POST_BUILD"
        if registry != f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com" or not ecr_repository or not tag:
            return f"docker push: cannot push to {uri!r} with tag {tag!r}"
        refusal = self.denied(build, PUSH_ACTIONS, repository_arn)
        if refusal:
            return f"docker push {uri}:{tag}: denied: {refusal}"
        manifest = image_manifest(ecr_repository, build.resolved_commit, dockerfile)
        ecr = self._runtime.aws("ecr", caller="codebuild")
        try:
            answer = ecr.put_image(repositoryName=ecr_repository, imageManifest=manifest, imageTag=tag)
            build.image_digest = answer["image"]["imageId"]["imageDigest"]
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code != "ImageAlreadyExistsException":
                return f"docker push: {code}"
            # Pushing the very same image again succeeds for docker; ECR answers with this code.
            images = ecr.describe_images(repositoryName=ecr_repository, imageIds=[{"imageTag": tag}])
            build.image_digest = images["imageDetails"][0]["imageDigest"]
        return None
