"""CodeBuild for the emulator: StartBuild / StopBuild / BatchGetBuilds and the build itself.

Emulated: moto ignores environment overrides and marks every build SUCCEEDED at once. Here a
build honours the project's variables and the overrides, the idempotency token and the source
version; instead of running Docker it checks the Dockerfile is in the commit and pushes an
image manifest for the commit to ECR (moto's put_image through the front, so the PUSH event
follows as on AWS). The same commit always gives the same manifest, hence the same digest.
It emits the "CodeBuild Build State Change" events, and can be told to fail.

The build runs as the project's service role, checked as IAM would: codecommit:GitPull for the
source, ecr:GetAuthorizationToken for the login, ecr:BatchGetImage/GetDownloadUrlForLayer for
the layer cache (a denied cache pull is only buildx's warning), and the push actions on the
target repository. A build whose role may not pull its source or push fails in that phase with
the denial in its phase context, as CodeBuild's would; every missing permission is a gap of the role.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from emulator.codecommit import GitError
from emulator.front import ApiError
from emulator.iam import Request, Statement, denial_message, is_allowed, policy_statements, principal_arn
from emulator.template import ACCOUNT_ID, REGION, Template, build_role_id, build_role_policies, role_name

if TYPE_CHECKING:
    from emulator.runtime import BuildRuntime

_IDEMPOTENCY_WINDOW_SECONDS = 5 * 60
_PHASES = ("SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD")
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


def _event_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%b %-d, %Y %-I:%M:%S %p")


class CodeBuildService:
    def __init__(self, runtime: BuildRuntime, projects: dict[str, Project]) -> None:
        self._runtime = runtime
        self.projects = projects
        self.builds: dict[str, Build] = {}
        self._tokens: dict[str, tuple[float, str]] = {}
        self._numbers: dict[str, int] = {}
        # Scenario controls: fail the next N builds, or any build of these commits.
        self.fail_next: list[str] = []
        self.fail_commits: dict[str, str] = {}
        self._role: BuildRole | None = None
        self._role_read = False

    # --- the API ---------------------------------------------------------------------------

    def __call__(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        with self._runtime.lock:
            if operation == "StartBuild":
                return {"build": self._describe(self._start(params))}
            if operation == "StopBuild":
                return {"build": self._describe(self._stop(str(params.get("id", ""))))}
            if operation == "BatchGetBuilds":
                found, missing = [], []
                for build_id in params.get("ids") or []:
                    build = self._find(str(build_id))
                    if build is None:
                        missing.append(build_id)
                    else:
                        found.append(self._describe(build))
                return {"builds": found, "buildsNotFound": missing}
            if operation == "ListBuildsForProject":
                project = self._project(str(params.get("projectName", "")))
                ids = [build.id for build in self.builds.values() if build.project.name == project.name]
                return {"ids": list(reversed(ids))}
        raise ApiError("InvalidInputException", f"the emulator's CodeBuild does not implement {operation}")

    def _project(self, name: str) -> Project:
        project = self.projects.get(name.rsplit("/", 1)[-1])
        if project is None:
            raise ApiError(
                "ResourceNotFoundException",
                f"Project cannot be found: arn:aws:codebuild:{REGION}:{ACCOUNT_ID}:project/{name}",
            )
        return project

    def _find(self, build_id: str) -> Build | None:
        return self.builds.get(build_id.rsplit(":build/", 1)[-1])

    def _start(self, params: dict[str, Any]) -> Build:
        project = self._project(str(params.get("projectName", "")))
        variables = {name: {"name": name, "value": value, "type": kind} for name, value, kind in project.variables}
        for override in params.get("environmentVariablesOverride") or []:
            name = str(override.get("name", ""))
            if not name:
                raise ApiError("InvalidInputException", "environmentVariablesOverride: every variable needs a name")
            variables[name] = {
                "name": name,
                "value": str(override.get("value", "")),
                "type": str(override.get("type") or "PLAINTEXT"),
            }
        fingerprint = json.dumps(
            {key: value for key, value in params.items() if key != "idempotencyToken"}, sort_keys=True
        )
        token = params.get("idempotencyToken")
        now = time.time()
        if token:
            seen = self._tokens.get(str(token))
            if seen and now - seen[0] < _IDEMPOTENCY_WINDOW_SECONDS:
                build = self.builds[seen[1]]
                if build.fingerprint != fingerprint:
                    raise ApiError(
                        "IdempotentParameterMismatchException",
                        "The idempotency token was used with different parameters within the last 5 minutes",
                    )
                return build
        number = self._numbers.get(project.name, 0) + 1
        self._numbers[project.name] = number
        build = Build(
            id=f"{project.name}:{uuid.uuid4()}",
            number=number,
            project=project,
            source_location=str(params.get("sourceLocationOverride") or project.source_location),
            source_version=str(params.get("sourceVersion") or ""),
            variables=list(variables.values()),
            token=str(token) if token else None,
            fingerprint=fingerprint,
            started=now,
        )
        build.phases.append({"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now})
        self.builds[build.id] = build
        if token:
            self._tokens[str(token)] = (now, build.id)
        self._runtime.schedule("build", f"build #{number} starts", lambda: self._run(build))
        return build

    def _stop(self, build_id: str) -> Build:
        build = self._find(build_id)
        if build is None:
            raise ApiError("ResourceNotFoundException", f"Build {build_id} does not exist")
        if not build.completed:
            self._finish(build, "STOPPED", "stopped by StopBuild")
        return build

    # --- the build -------------------------------------------------------------------------

    def _run(self, build: Build) -> None:
        """Provisioning: the IN_PROGRESS event; the build proper runs as a later task."""
        if build.completed:
            return
        build.phase = "PROVISIONING"
        self._emit(build)
        self._runtime.schedule("build", f"build #{build.number} runs", lambda: self._build(build))

    def _role_of_builds(self) -> BuildRole | None:
        if not self._role_read and self._runtime.template is not None:
            self._role = build_role(self._runtime.template)
            self._role_read = True
            if self._role is not None and not self._role.complete:
                self._runtime.mark_unchecked_policy(self._role.logical_id)
        return self._role

    def _denied(self, build: Build, actions: tuple[str, ...], resource: str) -> str | None:
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

    def _build(self, build: Build) -> None:
        if build.completed:
            return
        repositories = self._runtime.git_repositories
        name = build.source_location.rstrip("/").rsplit("/", 1)[-1]
        repository = repositories.get(name)
        build.phase = "DOWNLOAD_SOURCE"
        if repository is None:
            self._finish(build, "FAILED", f"source {build.source_location} is not a repository of the emulator")
            return
        refusal = self._denied(build, ("codecommit:GitPull",), f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{name}")
        if refusal:
            self._finish(build, "FAILED", f"ACCESS_DENIED: git clone of {name}: {refusal}")
            return
        try:
            build.resolved_commit = repository.resolve(build.source_version or repository.default_branch)
        except ApiError:
            self._finish(build, "FAILED", f"source version {build.source_version} does not exist")
            return
        build.phase = "PRE_BUILD"
        refusal = self._denied(build, ("ecr:GetAuthorizationToken",), "*")
        if refusal:
            self._finish(build, "FAILED", f"aws ecr get-login-password: AccessDeniedException: {refusal}")
            return
        build.phase = "BUILD"
        dockerfile_path = build.variable("DOCKERFILE") or "Dockerfile"
        try:
            dockerfile = repository.blob_at(build.resolved_commit, dockerfile_path)
        except GitError:
            dockerfile = None
        if dockerfile is None:
            self._finish(build, "FAILED", f"docker build: {dockerfile_path} not found in {build.resolved_commit[:12]}")
            return
        instructions = [
            line.strip().split(None, 1)[0].upper()
            for line in dockerfile.decode(errors="replace").splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        if "FROM" not in instructions:
            self._finish(build, "FAILED", f"docker build: {dockerfile_path} has no FROM instruction")
            return
        injected = self.fail_commits.pop(build.resolved_commit, None)
        if injected is None and self.fail_next:
            injected = self.fail_next.pop(0)
        if injected is not None:
            self._finish(build, "FAILED", injected or "the build was told to fail")
            return
        uri = build.variable("ECR_REPOSITORY_URI")
        tag = build.variable("IMAGE_TAG")
        registry, _, ecr_repository = uri.partition("/")
        repository_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{ecr_repository}"
        if build.variable("CACHE_TAG") and ecr_repository:
            # buildx only warns when it may not import the cache; exporting it is a push, and fails the build.
            self._denied(build, PULL_ACTIONS, repository_arn)
            refusal = self._denied(build, PUSH_ACTIONS, repository_arn)
            if refusal:
                self._finish(build, "FAILED", f"docker buildx build: exporting cache to {uri}: denied: {refusal}")
                return
        build.phase = "POST_BUILD"
        if registry != f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com" or not ecr_repository or not tag:
            self._finish(build, "FAILED", f"docker push: cannot push to {uri!r} with tag {tag!r}")
            return
        refusal = self._denied(build, PUSH_ACTIONS, repository_arn)
        if refusal:
            self._finish(build, "FAILED", f"docker push {uri}:{tag}: denied: {refusal}")
            return
        manifest = image_manifest(ecr_repository, build.resolved_commit, dockerfile)
        ecr = self._runtime.aws("ecr", caller="codebuild")
        try:
            answer = ecr.put_image(repositoryName=ecr_repository, imageManifest=manifest, imageTag=tag)
            build.image_digest = answer["image"]["imageId"]["imageDigest"]
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code != "ImageAlreadyExistsException":
                self._finish(build, "FAILED", f"docker push: {code}")
                return
            # Pushing the very same image again succeeds for docker; ECR answers with this code.
            images = ecr.describe_images(repositoryName=ecr_repository, imageIds=[{"imageTag": tag}])
            build.image_digest = images["imageDetails"][0]["imageDigest"]
        self._finish(build, "SUCCEEDED", "")

    def _finish(self, build: Build, status: str, reason: str) -> None:
        build.status = status
        build.reason = reason
        build.ended = time.time()
        reached = _PHASES.index(build.phase) if build.phase in _PHASES else len(_PHASES) - 1
        start = build.phases[0]["startTime"]
        build.phases = [
            {
                "phaseType": phase,
                "phaseStatus": "SUCCEEDED" if index < reached or status == "SUCCEEDED" else status,
                "startTime": start,
                "endTime": build.ended,
                "durationInSeconds": 0,
                **({"contexts": [{"statusCode": status, "message": reason}]} if index == reached and reason else {}),
            }
            for index, phase in enumerate(_PHASES[: reached + 1])
        ]
        build.phase = "COMPLETED"
        self._emit(build)
        self._runtime.record_task(f"build #{build.number} {status}" + (f": {reason}" if reason else ""), build=build.id)

    # --- shapes ----------------------------------------------------------------------------

    def _describe(self, build: Build) -> dict[str, Any]:
        project = build.project
        answer: dict[str, Any] = {
            "id": build.id,
            "arn": build.arn,
            "buildNumber": build.number,
            "startTime": build.started,
            "currentPhase": build.phase,
            "buildStatus": build.status,
            "sourceVersion": build.source_version,
            "projectName": project.name,
            "phases": build.phases,
            "source": {"type": project.source_type, "location": build.source_location},
            "environment": {
                "type": project.environment_type,
                "image": project.image,
                "computeType": project.compute_type,
                "environmentVariables": build.variables,
                "privilegedMode": project.privileged,
            },
            "logs": {
                "groupName": project.log_group,
                "streamName": build.log_stream(),
                "deepLink": self._deep_link(build),
            },
            "timeoutInMinutes": project.timeout_minutes,
            "queuedTimeoutInMinutes": project.queued_timeout_minutes,
            "buildComplete": build.completed,
            "initiator": "ecr-pipeline",
        }
        if build.resolved_commit:
            answer["resolvedSourceVersion"] = build.resolved_commit
        if build.ended is not None:
            answer["endTime"] = build.ended
        return answer

    @staticmethod
    def _deep_link(build: Build) -> str:
        return (
            f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}#logEvent:"
            f"group={build.project.log_group};stream={build.log_stream()}"
        )

    def _emit(self, build: Build) -> None:
        """A "CodeBuild Build State Change" event, in the shape CodeBuild sends."""
        project = build.project
        information: dict[str, Any] = {
            "cache": {"type": "NO_CACHE"},
            "build-number": float(build.number),
            "timeout-in-minutes": project.timeout_minutes,
            "build-complete": build.completed,
            "initiator": "ecr-pipeline",
            "build-start-time": _event_time(build.started),
            "source": {"type": project.source_type, "location": build.source_location},
            "source-version": build.source_version,
            "artifact": {"location": ""},
            "environment": {
                "image": project.image,
                "privileged-mode": project.privileged,
                "compute-type": project.compute_type,
                "type": project.environment_type,
                "environment-variables": [
                    {"name": item["name"], "type": item["type"], "value": item["value"]} for item in build.variables
                ],
            },
            "logs": {
                "group-name": project.log_group,
                "stream-name": build.log_stream(),
                "deep-link": self._deep_link(build),
            },
            "phases": [
                {
                    "phase-context": [
                        f"{context['statusCode']}: {context['message']}" for context in phase.get("contexts", [])
                    ],
                    "start-time": _event_time(phase["startTime"]),
                    "end-time": _event_time(phase["endTime"]),
                    "duration-in-seconds": phase.get("durationInSeconds", 0),
                    "phase-type": phase["phaseType"],
                    "phase-status": phase["phaseStatus"],
                }
                for phase in build.phases
            ],
            "queued-timeout-in-minutes": project.queued_timeout_minutes,
        }
        if build.resolved_commit:
            information["resolved-source-version"] = build.resolved_commit
        detail = {
            "build-status": build.status,
            "project-name": project.name,
            "build-id": build.arn,
            "additional-information": information,
            "current-phase": build.phase,
            "current-phase-context": f"[{build.reason}]" if build.reason else "[: ]",
            "version": "1",
        }
        self._runtime.emit("aws.codebuild", "CodeBuild Build State Change", detail, [build.arn])
