"""Docker mode's CodeBuild build: the pushed commit checked out and the project's buildspec run for real.

As on CodeBuild: the source is a clone of the repository at the resolved commit (the build role
needs codecommit:GitPull); the buildspec is StartBuild's `buildspecOverride` (inline, or a path in
the source) or the project's own; it runs phase by phase under bash (emulator.buildspec) with the
project's and the overrides' variables and CodeBuild's own (`CODEBUILD_*`, `AWS_DEFAULT_REGION`).
`aws` on PATH calls the emulator as the build role, so `aws ecr get-login-password` is IAM-checked,
and docker reaches ECR's registry through the emulator's registry front, which checks each push
and pull against the same role. Every build starts on a clean engine: the layer cache a build
finds is the one in ECR (inline cache), as on a fresh CodeBuild host.

Emulated differences: the builds share the emulator's dockerd, which has no bridge network, so
`BUILD_NETWORK` is `host` here (empty on CodeBuild); the base images are local stand-ins.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from emulator.builds import Build, BuildSteps
from emulator.buildspec import BuildspecError, parse_buildspec, run_buildspec
from emulator.docker_engine import DOCKER_CLIENT
from emulator.template import ACCOUNT_ID, REGION, build_role_id

if TYPE_CHECKING:
    from emulator.docker_mode import DockerMode
    from emulator.runtime import BuildRuntime

AWS_CLI = Path(sys.executable).parent / "aws"


def _phase(phase_type: str, status: str, start: float, end: float, context: str = "") -> dict[str, Any]:
    described: dict[str, Any] = {
        "phaseType": phase_type,
        "phaseStatus": status,
        "startTime": start,
        "endTime": end,
        "durationInSeconds": int(end - start),
    }
    if context:
        code, _, message = context.partition(": ")
        described["contexts"] = [{"statusCode": code, "message": message}]
    return described


class DockerBuildSteps:
    """What a provisioned build does in docker mode; the same interface as emulator.builds.BuildSteps."""

    def __init__(self, runtime: BuildRuntime, mode: DockerMode, work_dir: Path, front_url: str) -> None:
        self._runtime = runtime
        self._mode = mode
        self._checks = BuildSteps(runtime)
        self._root = work_dir / "builds"
        self._front_url = front_url

    def run(self, build: Build, injected_failure: Callable[[str], str | None]) -> str | None:
        started = time.time()
        phases = [
            _phase("SUBMITTED", "SUCCEEDED", build.started, build.started),
            _phase("QUEUED", "SUCCEEDED", build.started, started),
            _phase("PROVISIONING", "SUCCEEDED", started, started),
        ]
        build.ran_phases = phases
        directory = self._root / f"{build.project.name}-{build.number}"
        source = directory / "src"
        build.phase = "DOWNLOAD_SOURCE"
        failure = self._download_source(build, source)
        if failure is None:
            failure = injected_failure(build.resolved_commit or "")
            failure = None if failure is None else f"CLIENT_ERROR: {failure}"
        spec = None
        if failure is None:
            try:
                spec = parse_buildspec(self._buildspec_text(build, source))
            except (BuildspecError, OSError) as error:
                failure = f"YAML_FILE_ERROR: {error}"
        phases.append(
            _phase("DOWNLOAD_SOURCE", "FAILED" if failure else "SUCCEEDED", started, time.time(), failure or "")
        )
        if failure is not None or spec is None:
            end = time.time()
            phases += [_phase("FINALIZING", "SUCCEEDED", end, end), {"phaseType": "COMPLETED", "startTime": end}]
            return failure.partition(": ")[2] if failure else "no buildspec"
        self._fresh_engine()
        log_path = directory / "build.log"
        build.log_path = str(log_path)
        result = run_buildspec(
            spec, source, self._environment(build, directory), log_path, build.project.timeout_minutes * 60
        )
        for phase in result.phases:
            if phase.ran:
                phases.append(phase.describe())
        end = time.time()
        build.phase = next((phase.phase_type for phase in result.phases if phase.status == "FAILED"), "POST_BUILD")
        phases += [_phase(name, "SUCCEEDED", end, end) for name in ("UPLOAD_ARTIFACTS", "FINALIZING")]
        phases.append({"phaseType": "COMPLETED", "startTime": end})
        if result.status != "SUCCEEDED":
            failed = next((phase for phase in result.phases if phase.status not in (None, "SUCCEEDED")), None)
            if failed is None or not failed.contexts:
                return f"the build {result.status}"
            return failed.contexts[0].message
        return self._pushed_digest(build)

    # --- the steps -----------------------------------------------------------------------------

    def _download_source(self, build: Build, source: Path) -> str | None:
        name = build.source_location.rstrip("/").rsplit("/", 1)[-1]
        repository = self._runtime.git_repositories.get(name)
        if repository is None:
            return f"CLIENT_ERROR: source {build.source_location} is not a repository of the emulator"
        refusal = self._checks.denied(
            build, ("codecommit:GitPull",), f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{name}"
        )
        if refusal:
            return f"ACCESS_DENIED: git clone of {name}: {refusal}"
        try:
            build.resolved_commit = repository.resolve(build.source_version or repository.default_branch)
        except Exception:  # the repository's own error: no such ref
            return f"CLIENT_ERROR: source version {build.source_version} does not exist"
        shutil.rmtree(source, ignore_errors=True)
        source.parent.mkdir(parents=True, exist_ok=True)
        for command in (
            ["git", "clone", "--quiet", "--no-checkout", str(repository.bare), str(source)],
            ["git", "-C", str(source), "checkout", "--quiet", "--detach", build.resolved_commit],
        ):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                return f"CLIENT_ERROR: {' '.join(command[:2])}: {done.stderr.strip()}"
        return None

    @staticmethod
    def _buildspec_text(build: Build, source: Path) -> str:
        """The override (inline YAML, or a path in the source), else the project's own buildspec."""
        override = build.buildspec_override
        if override:
            try:
                inline = yaml.safe_load(override)
            except yaml.YAMLError:
                inline = None
            if isinstance(inline, dict):
                return override
            path = (source / override).resolve()
            if not path.is_relative_to(source.resolve()) or not path.is_file():
                raise BuildspecError(f"buildspecOverride: {override} is not a file of the source")
            return path.read_text(encoding="utf-8")
        if not build.project.buildspec:
            path = source / "buildspec.yml"
            if not path.is_file():
                raise BuildspecError("the project has no buildspec and the source has no buildspec.yml")
            return path.read_text(encoding="utf-8")
        return build.project.buildspec

    def _fresh_engine(self) -> None:
        """A fresh CodeBuild host has no build cache and no images but the base images it pulls."""
        engine = self._mode.engine
        assert engine is not None
        engine.run("builder", "prune", "--all", "--force", check=False, timeout=120)
        listed = engine.run("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False)
        keep = set(self._mode.base_images)
        stale = [name for name in listed.stdout.split() if name not in keep and not name.endswith(":<none>")]
        if stale:
            engine.run("image", "rm", "--force", *stale, check=False, timeout=120)
        engine.run("image", "prune", "--force", check=False, timeout=120)

    def _environment(self, build: Build, directory: Path) -> dict[str, str]:
        engine = self._mode.engine
        assert engine is not None and self._runtime.template is not None
        tools = directory / "bin"
        tools.mkdir(parents=True, exist_ok=True)
        for name, target in (("docker", DOCKER_CLIENT), ("aws", AWS_CLI)):
            link = tools / name
            if not link.exists():
                link.symlink_to(target)
        role = build_role_id(self._runtime.template) or "codebuild"
        variables = {item["name"]: item["value"] for item in build.variables}
        variables.update(
            {
                "PATH": f"{tools}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(directory),
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": f"{self._front_url}/fn/{role}",
                "AWS_ACCESS_KEY_ID": "codebuild-session",
                "AWS_SECRET_ACCESS_KEY": "codebuild-session",
                "CODEBUILD_BUILD_ID": build.id,
                "CODEBUILD_BUILD_ARN": build.arn,
                "CODEBUILD_BUILD_NUMBER": str(build.number),
                "CODEBUILD_BUILD_IMAGE": build.project.image,
                "CODEBUILD_INITIATOR": "ecr-pipeline",
                "CODEBUILD_RESOLVED_SOURCE_VERSION": build.resolved_commit or "",
                "CODEBUILD_SOURCE_VERSION": build.source_version,
                "CODEBUILD_SOURCE_REPO_URL": build.source_location,
                "CODEBUILD_START_TIME": str(int(build.started * 1000)),
                # The emulator's dockerd has no bridge network: builds use the host's (loopback only).
                "BUILD_NETWORK": "host",
                "DOCKER_HOST": engine.host,
                "DOCKER_CONFIG": str(directory / "docker-config"),
            }
        )
        if os.environ.get("TZ"):
            variables["TZ"] = os.environ["TZ"]
        return variables

    def _pushed_digest(self, build: Build) -> str | None:
        uri, tag = build.variable("ECR_REPOSITORY_URI"), build.variable("IMAGE_TAG")
        repository = uri.partition("/")[2]
        try:
            images = self._runtime.aws("ecr", direct=True).describe_images(
                repositoryName=repository, imageIds=[{"imageTag": tag}]
            )
        except Exception as error:  # the buildspec succeeded without pushing what the pipeline expects
            return f"the build succeeded but {uri}:{tag} is not in ECR ({error})"
        build.image_digest = images["imageDetails"][0]["imageDigest"]
        return None
