"""AWS CodeBuild: starting and stopping image builds."""

from __future__ import annotations

from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client


class BuildRequest(NamedTuple):
    project: str
    source_location: str
    source_version: str
    environment: dict[str, str]
    idempotency_token: str
    buildspec: str | None = None


class CodeBuild:
    def __init__(self, codebuild_client: Any = None) -> None:
        self._client = codebuild_client or client("codebuild")

    def start_build(self, request: BuildRequest) -> str:
        """Start a build and return its id; the same idempotency token returns the same build."""
        arguments: dict[str, Any] = {
            "projectName": request.project,
            "sourceTypeOverride": "CODECOMMIT",
            "sourceLocationOverride": request.source_location,
            "sourceVersion": request.source_version,
            "idempotencyToken": request.idempotency_token,
            "environmentVariablesOverride": [
                {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in request.environment.items()
            ],
        }
        if request.buildspec:
            arguments["buildspecOverride"] = request.buildspec
        return str(self._client.start_build(**arguments)["build"]["id"])

    def is_running(self, build_id: str) -> bool:
        builds = self._client.batch_get_builds(ids=[build_id]).get("builds", [])
        return bool(builds) and builds[0].get("buildStatus") == "IN_PROGRESS"

    def stop_build(self, build_id: str) -> bool:
        """Stop a build; False when it had already finished (nothing to stop)."""
        try:
            response = self._client.stop_build(id=build_id)
        except ClientError as error:
            # CodeBuild refuses to stop a build that has already completed.
            if error.response["Error"]["Code"] in ("InvalidInputException", "ResourceNotFoundException"):
                return False
            raise
        return response.get("build", {}).get("buildStatus") in ("STOPPED", "IN_PROGRESS")
