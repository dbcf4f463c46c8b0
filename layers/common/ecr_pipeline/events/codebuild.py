"""AWS CodeBuild "Build State Change" events, as `BuildStateChange` objects.

The build's environment overrides (set by start_build) travel in the event and name the push:
ECR_REPOSITORY_URI, IMAGE_TAG (the build tag, `sha-<commit>`), SOURCE_REPOSITORY, SOURCE_REF_TYPE,
SOURCE_BRANCH, SOURCE_URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ecr_pipeline.events.envelope import (
    MAX_FIELD,
    Envelope,
    MalformedEvent,
    check_arn,
    require_mapping,
    require_match,
    require_str,
)
from ecr_pipeline.text import clean, cut

BUILD_STATE_CHANGE = "CodeBuild Build State Change"
SOURCE = "aws.codebuild"
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED", "FAULT", "TIMED_OUT")
PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,254}")
# What a failed phase's context is told in: CodeBuild's own messages are a line or two.
CONTEXT_LIMIT = 1000


class FailedPhase(NamedTuple):
    phase: str
    status: str
    context: str


class BuildStateChange(NamedTuple):
    event_id: str
    time: str
    region: str
    account: str
    status: str
    project: str
    build_arn: str
    source_version: str = ""
    source_location: str = ""
    logs_link: str = ""
    environment: Mapping[str, str] = MappingProxyType({})
    failed_phase: FailedPhase | None = None

    @property
    def build_id(self) -> str:
        """The id StartBuild returns (`project:uuid`), as the ledger records it; the event carries the ARN."""
        _, separator, rest = self.build_arn.partition(":build/")
        return rest if separator else self.build_arn


def _environment_variables(info: dict[str, Any]) -> dict[str, str]:
    environment = info.get("environment")
    if not isinstance(environment, dict):
        return {}
    variables = environment.get("environment-variables")
    if not isinstance(variables, list):
        return {}
    values: dict[str, str] = {}
    for index, variable in enumerate(variables):
        entry = require_mapping(variable, f"detail.additional-information.environment.environment-variables[{index}]")
        name, value = entry.get("name"), entry.get("value")
        # Secrets (PARAMETER_STORE, SECRETS_MANAGER) carry a reference, never a value worth telling.
        told = entry.get("type", "PLAINTEXT") == "PLAINTEXT"
        if told and isinstance(name, str) and isinstance(value, str) and max(len(name), len(value)) <= MAX_FIELD:
            values[clean(name, multiline=False)] = clean(value, multiline=False)
    return values


def _failed_phase(info: dict[str, Any]) -> FailedPhase | None:
    phases = info.get("phases")
    if not isinstance(phases, list):
        return None
    for phase in phases:
        if not isinstance(phase, dict):
            continue
        status = phase.get("phase-status")
        if status in ("FAILED", "FAULT", "TIMED_OUT", "CLIENT_ERROR"):
            raw_contexts = phase.get("phase-context")
            contexts = (
                [str(text)[:CONTEXT_LIMIT] for text in raw_contexts or [] if text]
                if isinstance(raw_contexts, list)
                else []
            )
            context = cut(clean("; ".join(contexts), multiline=False), CONTEXT_LIMIT)
            return FailedPhase(_text(phase, "phase-type"), str(status), context)
    return None


def _text(container: dict[str, Any], key: str) -> str:
    """A text field told as is (a link, a version): cleaned, and left out when it is too long to be one."""
    value = container.get(key)
    return clean(value, multiline=False) if isinstance(value, str) and len(value) <= MAX_FIELD else ""


def _build_arn(detail: dict[str, Any]) -> str:
    build_arn = require_str(detail, "build-id", "detail")
    _, region, account, resource = check_arn(build_arn, "detail.build-id", "codebuild")
    if not region or not account or not resource.startswith("build/"):
        raise MalformedEvent("detail.build-id", f"must be a CodeBuild build ARN, got {build_arn[:80]!r}")
    return build_arn


def parse_build_state_change(envelope: Envelope) -> BuildStateChange:
    if envelope.detail_type != BUILD_STATE_CHANGE:
        raise MalformedEvent("detail-type", f"must be {BUILD_STATE_CHANGE!r}, got {envelope.detail_type!r}")
    detail = envelope.detail
    status = require_str(detail, "build-status", "detail")
    if status not in FINAL_STATUSES:
        finished = ", ".join(FINAL_STATUSES)
        raise MalformedEvent("detail.build-status", f"must be a finished status ({finished}), got {status!r}")
    info_raw = detail.get("additional-information")
    info = require_mapping(info_raw, "detail.additional-information") if info_raw is not None else {}
    logs = info["logs"] if isinstance(info.get("logs"), dict) else {}
    source = info["source"] if isinstance(info.get("source"), dict) else {}
    return BuildStateChange(
        event_id=envelope.event_id,
        time=envelope.time,
        region=envelope.region,
        account=envelope.account,
        status=status,
        project=require_match(detail, "project-name", "detail", PROJECT_NAME, "a CodeBuild project name"),
        build_arn=_build_arn(detail),
        source_version=_text(info, "source-version"),
        source_location=_text(source, "location"),
        logs_link=_text(logs, "deep-link"),
        environment=_environment_variables(info),
        failed_phase=_failed_phase(info),
    )
