"""Scenario steps: what they share, and the steps that push, push an image by hand or make Slack fail.

Shared by every step: the scenario error, the commit a step describes (files, deletions, message,
author and a date fixed by the step's number, so the same scenario makes the same commit ids), the
findings scans report, and the checks a scenario's new steps get when it is loaded.

    push: {branch: main, commits: [{message, author, files, delete, scan_findings, scan_status, fail_build}],
           from: <branch a new branch starts from>, repository: ...}   # one `git push` of all the commits
    push: {branch: main, to: <branch, tag or commit id>}               # fast-forward, or forced when it is not
    push_image: {repository: <image or ECR repository>, tag: <any tag>, like: <commit id or branch>,
                 scan_findings: [...], scan_status: FAILED}            # PutImage by an operator
    slack: {answer: 500 | 429 | timeout | drop, times: 1, retry_after: 1}   # the next requests to the webhook
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from emulator.builds import commit_manifest
from emulator.codecommit import CommitSpec, GitRepository
from emulator.ecr import SEVERITIES, Finding, ScanResult
from emulator.front import ApiError
from emulator.slack import FAULTS

if TYPE_CHECKING:
    from emulator.core import Emulator

# Commit dates are fixed, so the same scenario makes the same commit ids on every run.
COMMIT_EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DEFAULT_AUTHOR = "Dana Developer <dana@example.com>"
# What one commit of a `push` step may say (the `commit` step's fields, less branch, from and repository).
COMMIT_FIELDS = ("message", "author", "files", "delete", "scan_findings", "scan_status", "fail_build")
PUSH_FIELDS = ("branch", "commits", "to", "from", "repository")
PUSH_IMAGE_FIELDS = ("repository", "tag", "like", "scan_findings", "scan_status")
SLACK_FIELDS = ("answer", "times", "retry_after")
# The caller of a push_image's PutImage: someone of the account, neither a function nor AWS itself.
OPERATOR = "operator"


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the step and field."""


def findings(raw: Any, where: str) -> list[Finding]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: must be a list of findings")
    found = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("id") or item.get("severity") not in SEVERITIES:
            raise ScenarioError(f"{where}[{index}]: needs an id and a severity (one of {', '.join(SEVERITIES)})")
        found.append(
            Finding(
                id=str(item["id"]),
                severity=str(item["severity"]),
                package=str(item.get("package", "openssl")),
                version=str(item.get("version", "3.0.7")),
                fixed_in=str(item.get("fixed_in", "")),
                description=str(item.get("description", "")),
            )
        )
    return found


def scan_result(raw: dict[str, Any], where: str) -> ScanResult:
    """What scans find, from a step's `scan_status`/`scan_findings` (or `status`/`findings`)."""
    status_key = "scan_status" if "scan_status" in raw else "status"
    status = str(raw.get(status_key) or "COMPLETE")
    if status not in ("COMPLETE", "FAILED"):
        raise ScenarioError(f"{where}.{status_key}: must be COMPLETE or FAILED, got {status!r}")
    findings_key = "scan_findings" if "scan_findings" in raw else "findings"
    return ScanResult(status=status, findings=findings(raw.get(findings_key), f"{where}.{findings_key}"))


def _unknown_fields(raw: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise ScenarioError(f"{where}.{unknown[0]}: unknown field (one of {', '.join(allowed)})")


def _file_content(value: Any, where: str, base_dir: Path) -> str | bytes:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("from"), str):
        source = (base_dir / value["from"]).resolve()
        try:
            return source.read_bytes()
        except OSError as error:
            raise ScenarioError(f"{where}.from: cannot read {source}: {error.strerror}") from None
    raise ScenarioError(f"{where}: must be the file's text or {{from: path}}")


def commit_spec(raw: dict[str, Any], where: str, base_dir: Path, moment: datetime, default_message: str) -> CommitSpec:
    """The commit a step (or one commit of a push) describes: files beside the scenario are read here."""
    files_raw = raw.get("files") or {}
    if not isinstance(files_raw, dict):
        raise ScenarioError(f"{where}.files: must be a mapping of path to text or {{from: file}}")
    deletions_raw = raw.get("delete") or []
    if not isinstance(deletions_raw, list) or not all(isinstance(path, str) for path in deletions_raw):
        raise ScenarioError(f"{where}.delete: must be a list of paths")
    files = {str(path): _file_content(value, f"{where}.files.{path}", base_dir) for path, value in files_raw.items()}
    for path in [*files, *deletions_raw]:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ScenarioError(f"{where}: {path!r} must be a path inside the repository")
    for key in ("message", "author"):
        if key in raw and not isinstance(raw[key], str):
            raise ScenarioError(f"{where}.{key}: must be a string")
    name, _, email = str(raw.get("author") or DEFAULT_AUTHOR).partition("<")
    return CommitSpec(
        files=files,
        deletions=tuple(deletions_raw),
        message=str(raw.get("message") or default_message),
        author=(name.strip(), email.rstrip(">").strip() or "dev@example.com"),
        date=f"{int(moment.timestamp())} +0000",
    )


def commit_moment(index: int, position: int = 0) -> datetime:
    """The date of the `position`-th commit (from 0) of step `index`: a minute per step, a second per commit."""
    return COMMIT_EPOCH + timedelta(minutes=index, seconds=position)


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ScenarioError(f"{where}.{key}: required, a non-empty string")
    return str(value)


def _count(raw: dict[str, Any], key: str, where: str, default: int, least: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ScenarioError(f"{where}.{key}: must be a whole number, {least} or more")
    return value


def check_push(raw: dict[str, Any], where: str, base_dir: Path) -> None:
    _unknown_fields(raw, PUSH_FIELDS, where)
    _text(raw, "branch", where)
    if ("commits" in raw) == ("to" in raw):
        raise ScenarioError(f"{where}: needs exactly one of `commits` (a list) and `to` (a branch, tag or commit id)")
    if "to" in raw:
        _text(raw, "to", where)
        if "from" in raw:
            raise ScenarioError(f"{where}.from: only with `commits` (the branch a new branch starts from)")
        return
    if "from" in raw:
        _text(raw, "from", where)
    commits = raw["commits"]
    if not isinstance(commits, list) or not commits:
        raise ScenarioError(f"{where}.commits: must be a non-empty list of commits")
    for position, entry in enumerate(commits, start=1):
        here = f"{where}.commits[{position}]"
        if not isinstance(entry, dict):
            raise ScenarioError(f"{here}: must be a mapping ({', '.join(COMMIT_FIELDS)})")
        _unknown_fields(entry, COMMIT_FIELDS, here)
        commit_spec(entry, here, base_dir, COMMIT_EPOCH, "")
        if "scan_findings" in entry or "scan_status" in entry:
            scan_result(entry, here)


def check_push_image(raw: dict[str, Any], where: str, base_dir: Path) -> None:
    _unknown_fields(raw, PUSH_IMAGE_FIELDS, where)
    for key in ("repository", "tag", "like"):
        _text(raw, key, where)
    if "scan_findings" in raw or "scan_status" in raw:
        scan_result(raw, where)


def check_slack(raw: dict[str, Any], where: str, base_dir: Path) -> None:
    _unknown_fields(raw, SLACK_FIELDS, where)
    if str(raw.get("answer")) not in FAULTS:
        raise ScenarioError(f"{where}.answer: must be one of {', '.join(FAULTS)}, got {raw.get('answer')!r}")
    _count(raw, "times", where, 1, 1)
    if "retry_after" in raw:
        if str(raw["answer"]) != "429":
            raise ScenarioError(f"{where}.retry_after: only with answer 429")
        _count(raw, "retry_after", where, 1, 0)


# The load-time checks of the steps defined here, by step kind.
STEP_CHECKS = {"push": check_push, "push_image": check_push_image, "slack": check_slack}


def check_parameters(raw: Any) -> dict[str, str]:
    """A scenario's `parameters`: template parameter names to values (CloudFormation takes strings)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ScenarioError("parameters: must be a mapping of template parameter names to values")
    values = {}
    for name, value in raw.items():
        if not isinstance(value, str | int | float):
            raise ScenarioError(f"parameters.{name}: must be a string or a number")
        values[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


class StepActions:
    """What the steps need of the emulator, and the steps defined in this module."""

    def __init__(self, emulator: Emulator, base_dir: Path) -> None:
        self.emulator = emulator
        self.base_dir = base_dir
        self.push_seconds: list[dict[str, Any]] = []

    def _repository(self, step: dict[str, Any], where: str) -> GitRepository:
        name = step.get("repository") or next(iter(self.emulator.config.repositories))
        repository = self.emulator.git_repositories.get(str(name))
        if repository is None:
            raise ScenarioError(f"{where}.repository: {name!r} is not a repository of pipeline.yaml")
        return repository

    def _commit_effects(self, commit: str, raw: dict[str, Any], where: str) -> None:
        """What a commit's own fields say of its image's scans and its build."""
        if "scan_findings" in raw or "scan_status" in raw:
            assert self.emulator.ecr_events is not None
            self.emulator.ecr_events.by_commit[commit] = scan_result(raw, where)
        if raw.get("fail_build"):
            assert self.emulator.codebuild is not None
            self.emulator.codebuild.fail_commits[commit] = str(raw["fail_build"])

    def _pushed(self, repository: GitRepository, branch: str, commit: str, updates: list[Any]) -> list[str]:
        events = [event["id"] for event in self.emulator.push_events(repository, updates)]
        self.push_seconds.append({"commit": commit, "ref": branch, "events": events})
        return events

    def _push(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        repository = self._repository(raw, where)
        branch = str(raw["branch"])
        old = repository.branch_head(branch)
        if "to" in raw:
            try:
                commit, forced, updates = repository.move_branch(branch, str(raw["to"]))
            except ApiError:
                raise ScenarioError(
                    f"{where}.to: {raw['to']!r} is no branch, tag or commit of {repository.name}"
                ) from None
            force = " --force" if forced else ""
            self.emulator.printer.action(f"git push{force} {repository.name} {commit[:8]}:{branch}  (to {raw['to']})")
            events = self._pushed(repository, branch, commit, updates)
            fields = {"commit": commit, "old_commit": old, "forced": forced, "to": str(raw["to"])}
            return {"repository": repository.name, "branch": branch, **fields, "events": events}
        start_from = str(raw["from"]) if "from" in raw else None
        if start_from is not None and repository.branch_head(start_from) is None:
            raise ScenarioError(f"{where}.from: {start_from!r} is not a branch of {repository.name}")
        entries = raw["commits"]
        specs = [
            commit_spec(
                entry,
                f"{where}.commits[{position}]",
                self.base_dir,
                commit_moment(index, position - 1),
                f"Step {index}, commit {position}",
            )
            for position, entry in enumerate(entries, start=1)
        ]
        commits, updates = repository.commits_and_push(branch, specs, start_from=start_from)
        for position, (commit, entry) in enumerate(zip(commits, entries, strict=True), start=1):
            self._commit_effects(commit, entry, f"{where}.commits[{position}]")
        made = f"{len(commits)} commits, {commits[0][:8]}..{commits[-1][:8]}" if len(commits) > 1 else commits[0][:8]
        self.emulator.printer.action(f"git push {repository.name} {branch}  ({made})")
        events = self._pushed(repository, branch, commits[-1], updates)
        return {
            "repository": repository.name,
            "branch": branch,
            "commit": commits[-1],
            "commits": commits,
            "old_commit": old,
            "events": events,
        }

    def _push_image(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        assert self.emulator.ecr_events is not None
        name = str(raw["repository"])
        image = next(
            (image for image in self.emulator.config.images() if name in (image.name, image.ecr_repository)), None
        )
        if image is None:
            known = ", ".join(image.name for image in self.emulator.config.images())
            raise ScenarioError(f"{where}.repository: {name!r} is not an image of pipeline.yaml ({known})")
        repository = self.emulator.git_repositories[image.codecommit_repository]
        like = str(raw["like"])
        try:
            commit = repository.resolve(like)
        except ApiError:
            raise ScenarioError(f"{where}.like: {like!r} is no branch, tag or commit of {repository.name}") from None
        manifest = commit_manifest(repository, commit, image.ecr_repository, image.dockerfile)
        if manifest is None:
            raise ScenarioError(f"{where}.like: {commit[:12]} has no {image.dockerfile}: a build of it makes no image")
        if "scan_findings" in raw or "scan_status" in raw:
            self.emulator.ecr_events.by_commit[commit] = scan_result(raw, where)
        tag = str(raw["tag"])
        fields: dict[str, Any] = {"repository": image.ecr_repository, "tag": tag, "commit": commit}
        seen = len(self.emulator.timeline)
        self.emulator.printer.action(f"docker push {image.ecr_repository}:{tag}  (by hand, like {commit[:8]})")
        try:
            answer = self.emulator.aws("ecr", caller=OPERATOR).put_image(
                repositoryName=image.ecr_repository, imageManifest=manifest, imageTag=tag
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            self.emulator.printer.warning(f"PutImage {image.ecr_repository}:{tag} refused: {code}")
            return {**fields, "error": code, "events": []}
        digest = str(answer["image"]["imageId"]["imageDigest"])
        # A tag that is not a build tag does not say the commit: the scan's findings follow the content.
        self.emulator.ecr_events.commit_of_digest.setdefault(digest, commit)
        events = [
            entry["event"]["id"]
            for entry in self.emulator.timeline[seen:]
            if entry["kind"] == "event" and entry["event"]["detail-type"] == "ECR Image Action"
        ]
        return {**fields, "digest": digest, "events": events}

    def _slack(self, index: int, raw: dict[str, Any], where: str) -> dict[str, Any]:
        answer = str(raw["answer"])
        times = _count(raw, "times", where, 1, 1)
        retry_after = _count(raw, "retry_after", where, 1, 0)
        hold_seconds = 0.0
        if answer == "timeout":
            # Imported here: only a timeout needs the client's own wait, and slack_sdk is slow to import.
            from ecr_pipeline.adapters.slack import TIMEOUT_SECONDS

            hold_seconds = TIMEOUT_SECONDS + 1.0
        self.emulator.slack.answer_next(answer, times, retry_after, hold_seconds)
        self.emulator.printer.action(f"the Slack webhook answers the next {times} request(s): {answer}")
        return {"answer": answer, "times": times}
