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
      - deployment_group_fails: {group: demo-app-dev, times: 1, alarm: name}   # alarm: it goes off (else health)
      - deployment_busy: {environment: dev, times: 1}      # either strategy: ops deploy by hand
      - deployment_fails: {environment: dev, times: 1, alarm: name}   # either strategy; no alarm: health check
      - findings_at_traffic_shift: {commit: <id or branch> | next: true, findings: [...]}   # found after promotion
      - inject_event: {file: events/x.json}   # or {event: {...}}; bus: <name> (default: the default bus)
      - push: {branch: main, commits: [{message, files, ...}, ...]}   # or {branch: main, to: <ref>}
      - push_image: {repository: demo-app, tag: hotfix, like: main}
      - slack: {answer: 500 | 429 | timeout | drop, times: 1}
    parameters: {LogLevel: DEBUG}           # template parameters for the run (`--parameter` wins)
    builds: docker                          # the scenario needs docker mode (real builds and tasks)
    base_images: [name, ...]                # docker mode: more local base-image stand-ins to make

`repository` may be named in any step; it defaults to the first one of pipeline.yaml. After a
step, the emulator runs until nothing is pending, unless the step says `wait: false`. The steps
push, push_image and slack, and what all steps share, are in emulator.steps.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ecr_pipeline.config import DeployTarget
from emulator.core import REPO_ROOT, Emulator
from emulator.expect import Check, check_step, permission_checks, validate_expect
from emulator.steps import (
    STEP_CHECKS,
    ScenarioError,
    StepActions,
    check_parameters,
    commit_moment,
    commit_spec,
    scan_result,
)


def _because(alarm: Any) -> str:
    return f": alarm {alarm} goes off" if alarm else ": the new tasks fail their health check"


__all__ = ["STEP_KINDS", "Scenario", "ScenarioError", "ScenarioRunner", "load_scenario"]

STEP_KINDS = (
    "commit",
    "tag",
    "delete_branch",
    "scan_findings",
    "fail_next_build",
    "deployment_group_busy",
    "deployment_group_fails",
    "deployment_busy",
    "deployment_fails",
    "findings_at_traffic_shift",
    "inject_event",
    "push",
    "push_image",
    "slack",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: list[dict[str, Any]]
    base_dir: Path
    # Template parameter values for the run; the command line's `--parameter` wins over these.
    parameters: dict[str, str] = field(default_factory=dict)
    # "docker": the scenario runs only in docker mode (its steps build and serve for real).
    builds: str | None = None
    base_images: tuple[str, ...] = ()

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
        if kinds[0] in STEP_CHECKS:
            STEP_CHECKS[kinds[0]](step[kinds[0]], f"steps[{index}].{kinds[0]}", path.parent)
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
        parameters=check_parameters(document.get("parameters")),
        builds=_builds(document.get("builds")),
        base_images=_names(document.get("base_images"), "base_images"),
    )


def _builds(value: Any) -> str | None:
    if value is None or value in ("embedded", "docker"):
        return value
    raise ScenarioError(f"builds: must be embedded or docker, not {value!r}")


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ScenarioError(f"{where}: must be a list of image names")
    return tuple(value)


class ScenarioRunner(StepActions):
    def __init__(self, emulator: Emulator, scenario: Scenario) -> None:
        super().__init__(emulator, scenario.base_dir)
        self.scenario = scenario

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
        assert self.emulator.codedeploy is not None and self.emulator.ecs_deployments is not None
        # A busy target's deployment that no deployment met ends with the scenario, as it would in time.
        released = self.emulator.codedeploy.release_held() + self.emulator.ecs_deployments.release_held()
        if released:
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
        spec = commit_spec(raw, where, self.base_dir, commit_moment(index), f"Step {index}")
        commit, updates = repository.commit_and_push(
            branch, spec.files, list(spec.deletions), spec.message, spec.author, spec.date, start_from=raw.get("from")
        )
        self._commit_effects(commit, raw, where)
        self.emulator.printer.action(
            f'git push {repository.name} {branch}  ({commit[:8]} "{spec.message.splitlines()[0]}")'
        )
        events = self._pushed(repository, branch, commit, updates)
        return {"repository": repository.name, "branch": branch, "commit": commit, "events": events}

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
        result = scan_result(raw, where)
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
        alarm = raw.get("alarm")
        self.emulator.codedeploy.failing.setdefault(key, []).extend([[str(alarm)] if alarm else []] * times)
        self.emulator.printer.action(f"the next {times} deployment(s) of {key[1]} fail{_because(alarm)}")
        return {"group": key[1], "times": times, **({"alarm": alarm} if alarm else {})}

    def _target(self, raw: dict[str, Any], where: str) -> DeployTarget:
        environment = raw.get("environment")
        targets = [t for t in self.emulator.config.deploy_targets() if t.environment == environment]
        if not targets:
            known = ", ".join(sorted({t.environment for t in self.emulator.config.deploy_targets()}))
            raise ScenarioError(
                f"{where}.environment: {environment!r} is not an environment of pipeline.yaml ({known})"
            )
        return targets[0]

    def _deployment_busy(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        target = self._target(raw, where)
        if target.strategy == "codedeploy":
            return self._deployment_group_busy(
                index, {"group": target.deployment_group, "application": target.codedeploy_application, **raw}, where
            )
        assert self.emulator.ecs_deployments is not None
        times = int(raw.get("times", 1))
        if times < 1:
            raise ScenarioError(f"{where}.times: must be 1 or more")
        deployment = self.emulator.ecs_deployments.occupy(target.cluster, target.service, times)
        self.emulator.printer.action(
            f"ops deploy ECS service {target.service} by hand: in progress until {times} lookup(s) met it"
        )
        return {"service": target.service, "times": times, "deployment_id": deployment.arn}

    def _deployment_fails(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        target = self._target(raw, where)
        if target.strategy == "codedeploy":
            return self._deployment_group_fails(
                index, {"group": target.deployment_group, "application": target.codedeploy_application, **raw}, where
            )
        assert self.emulator.ecs_deployments is not None
        times, alarm = int(raw.get("times", 1)), raw.get("alarm")
        if not alarm:
            raise ScenarioError(f"{where}.alarm: an ecs target's deployment fails by an alarm (name it)")
        key = (target.cluster, target.service)
        self.emulator.ecs_deployments.alarming.setdefault(key, []).extend([[str(alarm)]] * times)
        self.emulator.printer.action(f"the next {times} deployment(s) of {target.service} fail{_because(alarm)}")
        return {"service": target.service, "times": times, "alarm": alarm}

    def _findings_at_traffic_shift(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        result = scan_result(raw, where)
        if raw.get("next"):
            self.emulator.findings_at_shift["next"] = result
            self.emulator.printer.action(
                f"by the time the next deployment reaches its traffic shift, its image's scan finds"
                f" {len(result.findings)} findings"
            )
            return {"next": True}
        target = raw.get("commit")
        if not target:
            raise ScenarioError(f"{where}: needs `commit` (an id or a branch) or `next: true`")
        commit = self._repository(raw, where).resolve(str(target))
        self.emulator.findings_at_shift[commit] = result
        self.emulator.printer.action(
            f"by the time {commit[:8]} reaches its traffic shift, its scan finds {len(result.findings)} findings"
        )
        return {"commit": commit}

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
