"""CodeBuild for the emulator: StartBuild / StopBuild / BatchGetBuilds, the build's life cycle and its events.

Emulated: moto ignores environment overrides and marks every build SUCCEEDED at once. Here a
build honours the project's variables and the overrides, the idempotency token and the source
version, then runs its steps (emulator.builds: source, Dockerfile, ECR push, as the build role).
It emits the "CodeBuild Build State Change" events, and can be told to fail.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from emulator.builds import Build, BuildSteps, Project
from emulator.front import ApiError
from emulator.template import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from emulator.runtime import BuildRuntime


class Steps(Protocol):
    def run(self, build: Build, injected_failure: Callable[[str], str | None]) -> str | None: ...


_IDEMPOTENCY_WINDOW_SECONDS = 5 * 60
_PHASES = ("SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD")


def _event_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%b %-d, %Y %-I:%M:%S %p")


def _event_phase(phase: dict[str, Any]) -> dict[str, Any]:
    """A phase in the event's shape; COMPLETED has only its start time, as in CodeBuild's events."""
    if "endTime" not in phase:
        return {"start-time": _event_time(phase["startTime"]), "phase-type": phase["phaseType"]}
    return {
        "phase-context": [f"{context['statusCode']}: {context['message']}" for context in phase.get("contexts", [])],
        "start-time": _event_time(phase["startTime"]),
        "end-time": _event_time(phase["endTime"]),
        "duration-in-seconds": phase.get("durationInSeconds", 0),
        "phase-type": phase["phaseType"],
        "phase-status": phase["phaseStatus"],
    }


class CodeBuildService:
    def __init__(self, runtime: BuildRuntime, projects: dict[str, Project], steps: Steps | None = None) -> None:
        self._runtime = runtime
        self.projects = projects
        self.builds: dict[str, Build] = {}
        self._tokens: dict[str, tuple[float, str]] = {}
        self._numbers: dict[str, int] = {}
        # Scenario controls: fail the next N builds, or any build of these commits.
        self.fail_next: list[str] = []
        self.fail_commits: dict[str, str] = {}
        # What a provisioned build does: the embedded steps, or docker mode's buildspec run.
        self._steps: Steps = steps or BuildSteps(runtime)

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
            buildspec_override=str(params.get("buildspecOverride") or ""),
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

    def _build(self, build: Build) -> None:
        if build.completed:
            return
        failure = self._steps.run(build, self._injected_failure)
        self._finish(build, "SUCCEEDED" if failure is None else "FAILED", failure or "")

    def _injected_failure(self, commit: str) -> str | None:
        """The failure the scenario asked for this build (by commit, else the next one), or None."""
        injected = self.fail_commits.pop(commit, None)
        if injected is None and self.fail_next:
            injected = self.fail_next.pop(0)
        return None if injected is None else injected or "the build was told to fail"

    def _finish(self, build: Build, status: str, reason: str) -> None:
        build.status = status
        build.reason = reason
        build.ended = time.time()
        reached = _PHASES.index(build.phase) if build.phase in _PHASES else len(_PHASES) - 1
        start = build.phases[0]["startTime"]
        if build.ran_phases is not None:
            # Docker mode: the phases as they ran, with their own times and contexts.
            build.phases = build.ran_phases
            build.phase = "COMPLETED"
            self._emit(build)
            self._runtime.record_task(
                f"build #{build.number} {status}" + (f": {reason}" if reason else ""),
                build=build.id,
                log=build.log_path,
            )
            return
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
            "phases": [_event_phase(phase) for phase in build.phases],
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
