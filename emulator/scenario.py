"""Scenarios: YAML files of steps that a developer or an operator would take.

    name: short name
    description: one paragraph
    steps:
      - title: what the step shows          # every step may have a title and `wait: false`
        commit: {branch: main, message: "...", files: {path: text | {from: file}}, delete: [path],
                 from: main, author: "Name <email>", scan_findings: [...], scan_status: FAILED, fail_build: reason}
      - tag: {name: v1.0.0, ref: main}      # push a lightweight git tag on a branch or commit
      - delete_branch: {branch: feature/x}
      - scan_findings: {commit: <id or branch>, findings: [{id, severity, package, version, fixed_in}]}
      - scan_findings: {next: true, status: FAILED}
      - fail_next_build: {reason: "..."}
      - deployment_group_busy: {group: demo-app-dev, times: 1}   # a real deployment by ops, in progress
                                                                #  until `times` deployments met it
      - deployment_group_fails: {group: demo-app-dev, times: 1}
      - inject_event: {file: events/x.json}   # or {event: {...}}; bus: <name> (default: the default bus)

`repository` may be named in any step; it defaults to the first one of pipeline.yaml. After a
step, the emulator runs until nothing is pending, unless the step says `wait: false`.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from emulator.core import REPO_ROOT, Emulator
from emulator.ecr import SEVERITIES, Finding, ScanResult
from emulator.expect import Check, check_step, permission_checks, validate_expect

STEP_KINDS = (
    "commit",
    "tag",
    "delete_branch",
    "scan_findings",
    "fail_next_build",
    "deployment_group_busy",
    "deployment_group_fails",
    "inject_event",
)
# Commit dates are fixed, so the same scenario makes the same commit ids on every run.
_COMMIT_EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the step and field."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: list[dict[str, Any]]
    base_dir: Path

    @property
    def total(self) -> int:
        return len(self.steps)


def load_scenario(path: Path) -> Scenario:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: cannot be read: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("steps"), list) or not document["steps"]:
        raise ScenarioError(f"{path}: must be a mapping with a non-empty list of steps")
    for index, step in enumerate(document["steps"], start=1):
        if not isinstance(step, dict):
            raise ScenarioError(f"steps[{index}]: must be a mapping")
        kinds = [key for key in step if key in STEP_KINDS]
        unknown = [key for key in step if key not in (*STEP_KINDS, "title", "wait", "expect")]
        if unknown:
            raise ScenarioError(f"steps[{index}].{unknown[0]}: unknown field (steps are: {', '.join(STEP_KINDS)})")
        if len(kinds) != 1:
            raise ScenarioError(f"steps[{index}]: must have exactly one of {', '.join(STEP_KINDS)}")
        if not isinstance(step[kinds[0]], dict):
            raise ScenarioError(f"steps[{index}].{kinds[0]}: must be a mapping")
        if "expect" in step:
            try:
                validate_expect(step["expect"], f"steps[{index}].expect")
            except ValueError as error:
                raise ScenarioError(str(error)) from None
    return Scenario(
        name=str(document.get("name") or path.stem),
        description=str(document.get("description") or ""),
        steps=document["steps"],
        base_dir=path.parent,
    )


def _findings(raw: Any, where: str) -> list[Finding]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: must be a list of findings")
    findings = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("id") or item.get("severity") not in SEVERITIES:
            raise ScenarioError(f"{where}[{index}]: needs an id and a severity (one of {', '.join(SEVERITIES)})")
        findings.append(
            Finding(
                id=str(item["id"]),
                severity=str(item["severity"]),
                package=str(item.get("package", "openssl")),
                version=str(item.get("version", "3.0.7")),
                fixed_in=str(item.get("fixed_in", "")),
                description=str(item.get("description", "")),
            )
        )
    return findings


def _scan_result(raw: dict[str, Any], where: str) -> ScanResult:
    status = str(raw.get("scan_status") or raw.get("status") or "COMPLETE")
    if status not in ("COMPLETE", "FAILED"):
        raise ScenarioError(f"{where}.status: must be COMPLETE or FAILED, got {status!r}")
    return ScanResult(
        status=status, findings=_findings(raw.get("scan_findings", raw.get("findings")), f"{where}.findings")
    )


class ScenarioRunner:
    def __init__(self, emulator: Emulator, scenario: Scenario) -> None:
        self.emulator = emulator
        self.scenario = scenario
        self.push_seconds: list[dict[str, Any]] = []

    def _repository(self, step: dict[str, Any], where: str) -> Any:
        name = step.get("repository") or next(iter(self.emulator.config.repositories))
        repository = self.emulator.git_repositories.get(str(name))
        if repository is None:
            raise ScenarioError(f"{where}.repository: {name!r} is not a repository of pipeline.yaml")
        return repository

    def _file_content(self, value: Any, where: str) -> str | bytes:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("from"), str):
            source = (self.scenario.base_dir / value["from"]).resolve()
            try:
                return source.read_bytes()
            except OSError as error:
                raise ScenarioError(f"{where}.from: cannot read {source}: {error.strerror}") from None
        raise ScenarioError(f"{where}: must be the file's text or {{from: path}}")

    def run(self) -> None:
        printer = self.emulator.printer
        printer.legend()
        for index, step in enumerate(self.scenario.steps, start=1):
            kind = next(key for key in step if key in STEP_KINDS)
            title = str(step.get("title") or kind.replace("_", " "))
            printer.step(index, self.scenario.total, title)
            fields = getattr(self, f"_{kind}")(index, step[kind], f"steps[{index}].{kind}")
            self.emulator.record_step(index, title, action=kind, **(fields or {}))
            if step.get("wait", True):
                self.emulator.run_until_idle()
        self.emulator.run_until_idle()
        assert self.emulator.codedeploy is not None
        # A busy group's deployment that no deployment met ends with the scenario, as it would in time.
        if self.emulator.codedeploy.release_held():
            self.emulator.run_until_idle()

    def check(self, report: dict[str, Any]) -> list[Check]:
        """Every step's expectations, checked against the run's report, then the run's permission gaps."""
        checks: list[Check] = []
        for index, step in enumerate(self.scenario.steps, start=1):
            if "expect" in step:
                recorded = next(
                    entry for entry in report["timeline"] if entry["kind"] == "step" and entry["step"] == index
                )
                checks.extend(check_step(report, recorded, step["expect"]))
        return checks + permission_checks(report)

    # --- the steps -------------------------------------------------------------------------

    def _commit(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        repository = self._repository(raw, where)
        branch = str(raw.get("branch") or repository.default_branch)
        files = {
            str(path): self._file_content(value, f"{where}.files.{path}")
            for path, value in (raw.get("files") or {}).items()
        }
        deletions = [str(path) for path in raw.get("delete") or []]
        for path in [*files, *deletions]:
            if Path(path).is_absolute() or ".." in Path(path).parts:
                raise ScenarioError(f"{where}: {path!r} must be a path inside the repository")
        author_text = str(raw.get("author") or "Dana Developer <dana@example.com>")
        name, _, email = author_text.partition("<")
        moment = _COMMIT_EPOCH + timedelta(minutes=index)
        message = str(raw.get("message") or f"Step {index}")
        commit, updates = repository.commit_and_push(
            branch,
            files,
            deletions,
            message,
            (name.strip(), email.rstrip(">").strip() or "dev@example.com"),
            f"{int(moment.timestamp())} +0000",
            start_from=raw.get("from"),
        )
        if "scan_findings" in raw or "scan_status" in raw:
            assert self.emulator.ecr_events is not None
            self.emulator.ecr_events.by_commit[commit] = _scan_result(raw, where)
        if raw.get("fail_build"):
            assert self.emulator.codebuild is not None
            self.emulator.codebuild.fail_commits[commit] = str(raw["fail_build"])
        self.emulator.printer.action(f'git push {repository.name} {branch}  ({commit[:8]} "{message.splitlines()[0]}")')
        events = self.emulator.push_events(repository, updates)
        self.push_seconds.append({"commit": commit, "ref": branch, "events": [event["id"] for event in events]})
        return {"repository": repository.name, "branch": branch, "commit": commit, "events": [e["id"] for e in events]}

    def _tag(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        repository = self._repository(raw, where)
        name = raw.get("name")
        if not name:
            raise ScenarioError(f"{where}.name: the git tag's name is required")
        target = str(raw.get("ref") or repository.default_branch)
        commit, updates = repository.push_tag(str(name), target)
        self.emulator.printer.action(f"git push {repository.name} tag {name}  (on {target}: {commit[:8]})")
        events = self.emulator.push_events(repository, updates)
        return {"repository": repository.name, "tag": name, "commit": commit, "events": [e["id"] for e in events]}

    def _delete_branch(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        repository = self._repository(raw, where)
        branch = raw.get("branch")
        if not branch:
            raise ScenarioError(f"{where}.branch: required")
        updates = repository.delete_branch(str(branch))
        self.emulator.printer.action(f"git push {repository.name} --delete {branch}")
        events = self.emulator.push_events(repository, updates)
        return {"repository": repository.name, "branch": branch, "events": [e["id"] for e in events]}

    def _scan_findings(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        assert self.emulator.ecr_events is not None
        result = _scan_result(raw, where)
        if raw.get("next"):
            self.emulator.ecr_events.next_results.append(result)
            self.emulator.printer.action(f"the next scan finds {len(result.findings)} findings ({result.status})")
            return {"next": True}
        target = raw.get("commit")
        if not target:
            raise ScenarioError(f"{where}: needs `commit` (an id or a branch) or `next: true`")
        commit = self._repository(raw, where).resolve(str(target))
        self.emulator.ecr_events.by_commit[commit] = result
        self.emulator.printer.action(f"scans of {commit[:8]} find {len(result.findings)} findings ({result.status})")
        return {"commit": commit}

    def _fail_next_build(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        assert self.emulator.codebuild is not None
        reason = str(raw.get("reason") or "the build was told to fail")
        self.emulator.codebuild.fail_next.append(reason)
        self.emulator.printer.action(f"the next build fails: {reason}")
        return {"reason": reason}

    def _group(self, raw: dict[str, Any], where: str) -> tuple[str, str]:
        assert self.emulator.codedeploy is not None
        group = raw.get("group")
        matches = [
            key
            for key in self.emulator.codedeploy.services
            if key[1] == group and raw.get("application") in (None, key[0])
        ]
        if not matches:
            known = ", ".join(f"{app}/{name}" for app, name in self.emulator.codedeploy.services)
            raise ScenarioError(f"{where}.group: {group!r} is not a deployment group of pipeline.yaml ({known})")
        return matches[0]

    def _deployment_group_busy(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        assert self.emulator.codedeploy is not None
        key = self._group(raw, where)
        times = int(raw.get("times", 1))
        if times < 1:
            raise ScenarioError(f"{where}.times: must be 1 or more")
        deployment = self.emulator.codedeploy.occupy(key, times)
        self.emulator.printer.action(
            f"ops deploy {key[1]} by hand ({deployment.id}): it refuses the next {times} deployment(s), then ends"
        )
        return {"group": key[1], "times": times, "deployment_id": deployment.id}

    def _deployment_group_fails(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        assert self.emulator.codedeploy is not None
        key = self._group(raw, where)
        times = int(raw.get("times", 1))
        self.emulator.codedeploy.failing[key] = self.emulator.codedeploy.failing.get(key, 0) + times
        self.emulator.printer.action(f"the next {times} deployment(s) of {key[1]} fail")
        return {"group": key[1], "times": times}

    def _inject_event(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        if "event" in raw:
            event = copy.deepcopy(raw["event"])
        elif "file" in raw:
            candidates = [self.scenario.base_dir / str(raw["file"]), REPO_ROOT / str(raw["file"])]
            source = next((path for path in candidates if path.exists()), None)
            if source is None:
                raise ScenarioError(f"{where}.file: {raw['file']} not found beside the scenario or in the repository")
            event = json.loads(source.read_text(encoding="utf-8"))
        else:
            raise ScenarioError(f"{where}: needs `file` or `event`")
        if not isinstance(event, dict):
            raise ScenarioError(f"{where}: the event must be a JSON object")
        if raw.get("fresh_id", True) and "id" in event:
            event["id"] = str(uuid.uuid4())
        bus = str(raw.get("bus") or "default")
        self.emulator.printer.action(f"inject {event.get('detail-type', 'event')} on the {bus} bus")
        rules = self.emulator.route(event, bus)
        return {"event_id": event.get("id"), "bus": bus, "rules": rules}
